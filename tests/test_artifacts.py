"""Publishing and fetching model packages on a real S3-compatible server (moto on loopback)."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
from pathlib import Path

import pytest

from sr.publish import PackageError, fetch, latest_version, main, publish
from sr.storage import list_s3, read_s3_bytes, upload_s3, write_s3_bytes

FILES = {"model.safetensors": b"\x00weights" * 100, "config.json": b'{"scale": 4}', "docs/README.md": b"# tiny\n"}


def make_package(dist: Path, name: str, version: str, files: dict[str, bytes] = FILES) -> Path:
    """The package stage's layout: dist/<name>-<version>/ with SHA256SUMS, and its tarball."""
    top = dist / f"{name}-{version}"
    for rel, data in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {rel}\n" for rel, data in sorted(files.items()))
    (top / "SHA256SUMS").write_text(sums)
    tarball = dist / f"{name}-{version}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(top, arcname=top.name)
    return tarball


def replace_version(prefix: str, tarball: Path, name: str, version: str) -> None:
    """Overwrite a published version's tarball and its checksum object directly (a tampered or rotten bucket)."""
    upload_s3(tarball, f"{prefix}/{name}/{version}/{tarball.name}")
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    write_s3_bytes(f"{digest}  {tarball.name}\n".encode(), f"{prefix}/{name}/{version}/{tarball.name}.sha256")


@pytest.fixture
def prefix(s3_bucket) -> str:
    return f"s3://{s3_bucket}/models"


def test_publish_layout_then_fetch_latest_and_explicit(prefix, tmp_path, capsys):
    tarball = make_package(tmp_path / "dist", "tiny", "1.0.0")
    (tmp_path / "selection.json").write_text('{"student": "student-sinsr", "value": 0.2}')
    assert publish(tarball, prefix, "tiny", "1.0.0", tmp_path / "selection.json") == "1.0.0"
    keys = [o.key for o in list_s3(prefix + "/")]
    assert keys == [
        f"models/tiny/1.0.0/{f}"
        for f in ["SHA256SUMS", "selection.json", "tiny-1.0.0.tar.gz", "tiny-1.0.0.tar.gz.sha256"]
    ] + ["models/tiny/latest"]
    assert read_s3_bytes(f"{prefix}/tiny/latest") == b"1.0.0\n"
    assert read_s3_bytes(f"{prefix}/tiny/1.0.0/selection.json") == b'{"student": "student-sinsr", "value": 0.2}'

    assert main(["tiny", str(tmp_path / "got"), "--prefix", prefix]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "got")
    for rel, data in FILES.items():
        assert (tmp_path / "got" / rel).read_bytes() == data
    assert fetch("tiny@1.0.0", tmp_path / "again", prefix) == tmp_path / "again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "dist", "got", "selection.json"]  # no staging left


def test_flipped_byte_inside_the_tarball_is_named_and_nothing_is_left(prefix, tmp_path, capsys, monkeypatch):
    publish(make_package(tmp_path / "good", "tiny", "1.0.0"), prefix, "tiny", "1.0.0")
    tarball = make_package(tmp_path / "bad", "tiny", "1.0.0")
    config = tmp_path / "bad" / "tiny-1.0.0" / "config.json"
    data = bytearray(config.read_bytes())
    data[10] ^= 0x01  # one flipped bit; SHA256SUMS in the package still lists the old hash
    config.write_bytes(bytes(data))
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(tmp_path / "bad" / "tiny-1.0.0", arcname="tiny-1.0.0")
    replace_version(prefix, tarball, "tiny", "1.0.0")

    monkeypatch.setenv("SR_MODELS_PREFIX", prefix)
    assert main(["tiny@latest", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err == "sr-fetch: tiny-1.0.0/config.json: sha256 mismatch: the file is corrupt\n"
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_corrupt_download_and_unpublished_versions_are_refused(prefix, tmp_path):
    publish(make_package(tmp_path / "v1", "tiny", "1.0.0"), prefix, "tiny", "1.0.0")
    # A publish that died after the tarball upload: no checksum object, so the version does not exist for fetchers.
    upload_s3(make_package(tmp_path / "v2", "tiny", "2.0.0"), f"{prefix}/tiny/2.0.0/tiny-2.0.0.tar.gz")
    with pytest.raises(PackageError, match=r"tiny@2.0.0: not published \(.*tiny-2.0.0.tar.gz.sha256 does not exist\)"):
        fetch("tiny@2.0.0", tmp_path / "out", prefix)
    assert latest_version(prefix, "tiny") == "1.0.0"
    # The tarball object changed after publishing: the checksum object no longer matches it.
    upload_s3(
        make_package(tmp_path / "other", "tiny", "1.0.0", {"a.txt": b"a"}), f"{prefix}/tiny/1.0.0/tiny-1.0.0.tar.gz"
    )
    with pytest.raises(PackageError, match="tiny-1.0.0.tar.gz: sha256 differs from .*: the download is corrupt"):
        fetch("tiny", tmp_path / "out", prefix)
    with pytest.raises(PackageError, match="other: nothing published under"):
        fetch("other", tmp_path / "out", prefix)
    assert not (tmp_path / "out").exists()


def test_republishing_a_version_with_other_content_is_refused(prefix, tmp_path):
    tarball = make_package(tmp_path / "a", "tiny", "1.0.0")
    publish(tarball, prefix, "tiny", "1.0.0")
    publish(tarball, prefix, "tiny", "1.0.0")  # the same bytes again (a retried publish): fine
    with pytest.raises(PackageError, match="tiny@1.0.0 is published with other content"):
        publish(make_package(tmp_path / "b", "tiny", "1.0.0", {"x": b"x"}), prefix, "tiny", "1.0.0")


def evil_tarball(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        tf.addfile(tarfile.TarInfo("tiny-1.0.0/SHA256SUMS"), io.BytesIO(b""))
        member.size = len(data)
        tf.addfile(member, io.BytesIO(data))
    return path


fifo = tarfile.TarInfo("tiny-1.0.0/pipe")
fifo.type = tarfile.FIFOTYPE


@pytest.mark.parametrize(
    "member, message",
    [
        (tarfile.TarInfo("tiny-1.0.0/../../evil.txt"), "unsafe path 'tiny-1.0.0/../../evil.txt'"),
        (tarfile.TarInfo("/etc/evil.txt"), "unsafe path '/etc/evil.txt'"),
        (tarfile.TarInfo("elsewhere/evil.txt"), "unsafe path 'elsewhere/evil.txt'"),
        (fifo, "tiny-1.0.0.tar.gz: cannot unpack: 'tiny-1.0.0/pipe' is a special file"),
    ],
)
def test_unsafe_tarballs_are_refused(prefix, tmp_path, member, message):
    tarball = evil_tarball(tmp_path / "tiny-1.0.0.tar.gz", member, b"evil")
    replace_version(prefix, tarball, "tiny", "1.0.0")
    with pytest.raises(PackageError, match=message):
        fetch("tiny@1.0.0", tmp_path / "out", prefix)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-1.0.0.tar.gz"]


@pytest.mark.parametrize("kind, target", [(tarfile.SYMTYPE, "../../../etc/passwd"), (tarfile.LNKTYPE, "etc/passwd")])
def test_escaping_links_are_refused(prefix, tmp_path, kind, target):
    link = tarfile.TarInfo("tiny-1.0.0/weights")
    link.type, link.linkname = kind, target
    replace_version(prefix, evil_tarball(tmp_path / "tiny-1.0.0.tar.gz", link), "tiny", "1.0.0")
    with pytest.raises(PackageError, match=f"link 'tiny-1.0.0/weights' -> '{target}' points outside tiny-1.0.0/"):
        fetch("tiny@1.0.0", tmp_path / "out", prefix)


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch, s3_env):
    monkeypatch.delenv("SR_MODELS_PREFIX", raising=False)
    assert main(["tiny", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        "sr-fetch: no S3 prefix: pass --prefix s3://bucket/models or set SR_MODELS_PREFIX\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    assert main(["tiny", str(tmp_path / "out"), "--prefix", "s3://b/models", "--attempts", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"S3 endpoint {closed} is unreachable (after 2 attempts)" in err
