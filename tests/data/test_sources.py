"""sr.data.sources: the download stage's sources, rejects, dedup, split, safe archives and deterministic output."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr.config import DownloadParams
from sr.data import sources
from sr.data.images import content_sha256, load_rgb8
from sr.data.sources import SourceError, assign_splits, bundled_path, download, split_value
from sr.storage import s3_client
from tests.pipeline_fixtures import default_params

BUNDLED_SIZES = {  # (width, height) of the photos shipped in scikit-image, scikit-learn, matplotlib and pyiqa
    "astronaut.png": (512, 512),
    "chelsea.png": (451, 300),
    "coffee.png": (600, 400),
    "hubble_deep_field.jpg": (1000, 872),
    "ihc.png": (512, 512),
    "motorcycle_left.png": (741, 500),
    "retina.jpg": (1411, 1411),
    "rocket.jpg": (640, 427),
    "china.jpg": (640, 427),
    "flower.jpg": (640, 427),
    "grace_hopper.jpg": (512, 600),
    "kodim03.bmp": (512, 384),
    "kodim04.bmp": (512, 384),
    "kodim06.bmp": (512, 384),
    "kodim08.bmp": (512, 384),
    "kodim19.bmp": (512, 384),
    "spaq_10241.jpg": (810, 1080),
    "frame_4wrw.jpg": (1152, 864),
    "frame_7gzd.jpg": (1067, 800),
    "frame_9ogw.jpg": (964, 1075),
}


def photo(seed: int, size: tuple[int, int] = (40, 32)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def params(*srcs: dict, **kwargs) -> DownloadParams:
    """params.yaml's download section with these sources; these tests keep one val image and 16 px photos unless
    they say otherwise."""
    base = default_params().download.model_dump()
    return DownloadParams(**{**base, "min_val_images": 1, "min_size": 16, "sources": list(srcs), **kwargs})


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def rejected(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_photos(folder: Path, seeds: range) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        photo(seed).save(folder / f"p{seed:02d}.png")


# ---------------------------------------------------------------------------------------------------- bundled


def test_bundled_photos_are_all_found_and_normalised(tmp_path):
    out = tmp_path / "raw"
    summary = download(params({"kind": "bundled"}, val_fraction=0.2, min_val_images=2, min_size=64), 0, out,
                       tmp_path / "c")
    rows = manifest(out)
    assert len(rows) == 20 and summary.train + summary.val == 20 and summary.rejected == 0
    assert summary.val == sum(r["split"] == "val" for r in rows) >= 2
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    for row in rows:
        assert list(row) == ["id", "source", "name", "sha256", "width", "height", "split"]
        assert row["source"] == "bundled"
        assert (row["width"], row["height"]) == BUNDLED_SIZES[row["name"]]
        original = bundled_path(Path(row["name"]).stem).read_bytes()
        assert row["sha256"] == hashlib.sha256(original).hexdigest()
        with Image.open(out / "images" / f"{row['id']}.png") as img:
            assert img.mode == "RGB" and img.size == BUNDLED_SIZES[row["name"]]
            assert content_sha256(img)[:16] == row["id"]
    assert rejected(out) == []


def test_bundled_subset_and_unknown_name(tmp_path):
    out = tmp_path / "raw"
    download(params({"kind": "bundled", "names": ["coffee", "chelsea"]}, min_size=64), 0, out, tmp_path / "c")
    assert sorted(r["name"] for r in manifest(out)) == ["chelsea.png", "coffee.png"]
    with pytest.raises(SourceError, match=r"unknown photo 'lena'; known: astronaut, chelsea, .*frame_9ogw$"):
        download(params({"kind": "bundled", "names": ["coffee", "lena"]}, min_size=64), 0, tmp_path / "x",
                 tmp_path / "c")
    assert not (tmp_path / "x").exists()


def test_bundled_photo_of_a_missing_distribution_or_file(monkeypatch):
    monkeypatch.setitem(sources.BUNDLED, "nope", ("no-such-dist-xyz", "x/y.png"))
    with pytest.raises(SourceError, match=r"^bundled photo 'nope': no-such-dist-xyz is not installed$"):
        bundled_path("nope")
    monkeypatch.setitem(sources.BUNDLED, "gone", ("pyiqa", "pyiqa/no_such_photo.png"))
    with pytest.raises(SourceError, match=r"^bundled photo 'gone': .*no_such_photo.png is missing from the installed pyiqa$"):
        bundled_path("gone")


# ---------------------------------------------------------------------------------------------------- dir + rejects


def test_dir_source_rejects_bad_files_and_keeps_duplicates_once(tmp_path):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    photo(1).save(src / "b.png")
    photo(2).save(src / "sub" / "a.JPG", format="JPEG", quality=95)
    photo(1).save(src / "sub" / "copy.bmp")  # same pixels as b.png in another format
    photo(3, (8, 40)).save(src / "narrow.png")  # 8 px wide < min_size
    jpeg, png = encode(photo(4), "JPEG"), encode(photo(5))
    (src / "half.jpeg").write_bytes(jpeg[: len(jpeg) // 2])
    (src / "half.png").write_bytes(png[: len(png) // 2])
    (src / "corrupt.png").write_bytes(png[:60] + bytes(range(256)) + png[316:])
    (src / "text.png").write_text("not a picture\n")
    (src / "empty.webp").write_bytes(b"")
    (src / "notes.txt").write_text("ignored: not an image suffix\n")
    out = tmp_path / "raw"
    summary = download(params({"kind": "dir", "path": str(src)}), 0, out, tmp_path / "c")

    rows = manifest(out)
    assert sorted(r["name"] for r in rows) == ["b.png", "sub/a.JPG"]
    assert {r["source"] for r in rows} == {f"dir:{src}"}
    b = next(r for r in rows if r["name"] == "b.png")
    assert b["sha256"] == hashlib.sha256((src / "b.png").read_bytes()).hexdigest()
    assert (b["width"], b["height"]) == (40, 32)

    reasons = {r["file"]: r["reason"] for r in rejected(out)}
    assert [r["file"] for r in rejected(out)] == sorted(reasons)  # candidate order: sorted relative paths
    assert set(reasons) == {"corrupt.png", "empty.webp", "half.jpeg", "half.png", "narrow.png", "sub/copy.bmp",
                            "text.png"}  # fmt: skip
    assert {r["source"] for r in rejected(out)} == {f"dir:{src}"}
    assert "truncated" in reasons["half.jpeg"] and "truncated" in reasons["half.png"]
    assert "corrupt" in reasons["corrupt.png"]
    assert "not an image" in reasons["text.png"] and "empty" in reasons["empty.webp"]
    assert reasons["narrow.png"] == "too small: 8x40, need at least 16 on both sides"
    assert reasons["sub/copy.bmp"] == f"duplicate of dir:{src} b.png"
    assert (summary.train + summary.val, summary.rejected) == (2, 7)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(f"{r['id']}.png" for r in rows)


def test_missing_folder_and_nothing_usable(tmp_path):
    with pytest.raises(SourceError, match=r"^dir:/no/such/place: no such folder$"):
        download(params({"kind": "dir", "path": "/no/such/place"}), 0, tmp_path / "raw", tmp_path / "c")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("nope")
    with pytest.raises(SourceError, match=r"no usable images; 1 files rejected \(first: x\.png: not an image"):
        download(params({"kind": "dir", "path": str(tmp_path / "bad")}), 0, tmp_path / "raw", tmp_path / "c")
    write_photos(tmp_path / "one", range(1))
    with pytest.raises(SourceError, match=r"only 1 usable images, all needed for val \(min_val_images=1\)"):
        download(params({"kind": "dir", "path": str(tmp_path / "one")}), 0, tmp_path / "raw", tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "one"]  # no output, no temp folder left


# ---------------------------------------------------------------------------------------------------- split + determinism


def test_split_is_stable_when_images_are_added(tmp_path):
    src = tmp_path / "photos"
    write_photos(src, range(12))
    p = params({"kind": "dir", "path": str(src)}, val_fraction=0.3, min_val_images=1)
    download(p, 7, tmp_path / "a", tmp_path / "c")
    before = {r["name"]: r["split"] for r in manifest(tmp_path / "a")}
    for name, split in before.items():  # the documented rule, recomputed from the pixels
        u = split_value(7, content_sha256(load_rgb8(src / name, name)))
        assert split == ("val" if u < 0.3 else "train")
    assert 0 < sum(s == "val" for s in before.values()) < 12

    write_photos(src, range(12, 20))
    download(p, 7, tmp_path / "a", tmp_path / "c")
    after = {r["name"]: r["split"] for r in manifest(tmp_path / "a")}
    assert len(after) == 20 and {n: after[n] for n in before} == before

    download(p, 8, tmp_path / "b", tmp_path / "c")
    assert {r["name"]: r["split"] for r in manifest(tmp_path / "b")} != after  # the seed matters


def test_min_val_images_fills_val_with_the_smallest_hash_values():
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(10)]
    u = {h: split_value(0, h) for h in hashes}
    splits = assign_splits(hashes, 0, 0.001, 3)
    assert {h for h, s in splits.items() if s == "val"} == set(sorted(hashes, key=u.get)[:3])
    natural = assign_splits(hashes, 0, 0.5, 1)
    assert {h for h, s in natural.items() if s == "val"} == {h for h in hashes if u[h] < 0.5}
    assert 0 < sum(s == "val" for s in natural.values()) < 10


def test_output_is_byte_identical_across_runs_and_replaced_whole(tmp_path):
    src = tmp_path / "photos"
    write_photos(src, range(6))
    Image.fromarray(np.full((20, 20), 77, np.uint8), "L").save(src / "gray.png")
    p = params({"kind": "dir", "path": str(src)}, {"kind": "bundled", "names": ["chelsea"]})
    download(p, 0, tmp_path / "a", tmp_path / "c")
    first = snapshot(tmp_path / "a")
    (tmp_path / "a" / "stale.txt").write_text("from an older run")
    download(p, 0, tmp_path / "a", tmp_path / "c")  # over an existing output
    download(p, 0, tmp_path / "b", tmp_path / "c")
    assert snapshot(tmp_path / "a") == first == snapshot(tmp_path / "b")
    assert len([k for k in first if k.startswith("images/")]) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "photos"]  # no temp, old or cache folders


# ---------------------------------------------------------------------------------------------------- url


class Server:
    """Serves in-memory files over HTTP with Range support; paths in `drop_once` lose the connection mid-body once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_once: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self.url = ""


@pytest.fixture
def http_server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(sources, "BACKOFF_S", 0.01)
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = int(re.match(r"bytes=(\d+)-$", range_header).group(1)) if range_header else 0
            if start >= len(data) and range_header:
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206 if range_header else 200)
            if range_header:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path in state.drop_once:
                state.drop_once.discard(self.path)
                body = body[: len(body) // 2]  # HTTP/1.0: the connection closes after this short body
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_url_archives_resume_after_a_dropped_connection(http_server, tmp_path):
    images = [(f"set/{i}.png", encode(photo(100 + i, (48, 48)))) for i in range(3)]
    tgz = tar_bytes([*images, link("set/alias.png", "0.png"), ("README.txt", b"hello")])
    zipped = zip_bytes([("z/one.jpg", encode(photo(200), "JPEG"))])
    http_server.files = {"/data.tar.gz": tgz, "/more.zip": zipped}
    http_server.drop_once = {"/data.tar.gz"}
    p = params(
        {"kind": "url", "url": http_server.url + "/data.tar.gz", "sha256": sha(tgz)},
        {"kind": "url", "url": http_server.url + "/more.zip", "sha256": sha(zipped)},
        retries=2,
    )
    cache = tmp_path / "cache"
    download(p, 0, tmp_path / "raw", cache)

    rows = manifest(tmp_path / "raw")
    assert sorted((r["source"], r["name"]) for r in rows) == [
        (f"url:{http_server.url}/data.tar.gz", "set/0.png"),
        (f"url:{http_server.url}/data.tar.gz", "set/1.png"),
        (f"url:{http_server.url}/data.tar.gz", "set/2.png"),
        (f"url:{http_server.url}/more.zip", "z/one.jpg"),
    ]
    assert next(r for r in rows if r["name"] == "set/1.png")["sha256"] == sha(images[1][1])
    first, second = http_server.requests[:2]
    assert first == ("/data.tar.gz", None)
    assert second == ("/data.tar.gz", f"bytes={len(tgz) // 2}-")  # resumed where the drop cut it
    assert len(http_server.requests) == 3  # drop, resume, zip
    assert {p.name for p in cache.iterdir()} == {f"{sha(tgz)[:16]}-data.tar.gz", f"{sha(zipped)[:16]}-more.zip"}

    download(p, 0, tmp_path / "raw", cache)  # verified archives in the cache: no new requests
    assert len(http_server.requests) == 3


def test_url_checksum_mismatch_leaves_nothing_behind(http_server, tmp_path):
    http_server.files = {"/data.zip": zip_bytes([("a.png", encode(photo(1)))])}
    wrong = "0" * 64
    url = http_server.url + "/data.zip"
    with pytest.raises(SourceError) as info:
        download(params({"kind": "url", "url": url, "sha256": wrong}), 0, tmp_path / "raw", tmp_path / "cache")
    actual = sha(http_server.files["/data.zip"])
    assert str(info.value) == f"{url}: sha256 mismatch: expected {wrong}, got {actual} (download deleted)"
    assert list((tmp_path / "cache").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_url_gives_up_after_retries(http_server, tmp_path):
    url = http_server.url + "/missing.tar"
    with pytest.raises(SourceError, match=r"/missing\.tar: HTTP 404"):
        download(params({"kind": "url", "url": url, "sha256": "1" * 64}), 0, tmp_path / "raw", tmp_path / "c")
    assert len(http_server.requests) == 1  # a 404 is not retried

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/data.zip"  # nothing listens there: a network error, retried
    with pytest.raises(SourceError, match=r"/data\.zip: download failed after 3 attempts \(URLError"):
        download(
            params({"kind": "url", "url": dead, "sha256": "1" * 64}, retries=2), 0, tmp_path / "raw", tmp_path / "c"
        )
    assert list((tmp_path / "c").iterdir()) == []


@pytest.mark.parametrize(
    "archive, member",
    [
        (zip_bytes([("ok.png", encode(photo(1))), ("../evil.png", encode(photo(2)))]), "../evil.png"),
        (tar_bytes([("ok.png", encode(photo(1))), ("a/../../evil.png", encode(photo(2)))]), "a/../../evil.png"),
        (tar_bytes([("/tmp/evil.png", encode(photo(2)))], mode="w"), "/tmp/evil.png"),
        (zip_bytes([("/evil.png", encode(photo(2)))]), "/evil.png"),
        (tar_bytes([("ok.png", encode(photo(1))), link("sub/evil.png", "../../outside.png")]), "sub/evil.png"),
        (tar_bytes([link("evil.png", "/etc/passwd")], mode="w:bz2"), "evil.png"),
        (tar_bytes([link("evil.png", "../secret", tarfile.LNKTYPE)], mode="w:xz"), "evil.png"),
    ],
    ids=["zip-dotdot", "tar-dotdot", "tar-absolute", "zip-absolute", "tar-symlink", "tar-abs-symlink", "hardlink"],
)
def test_unsafe_archives_are_rejected_whole(http_server, tmp_path, archive, member):
    http_server.files = {"/a": archive}
    url = http_server.url + "/a"
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(SourceError) as info:
        download(params({"kind": "url", "url": url, "sha256": sha(archive)}), 0, work / "raw", work / "cache")
    assert str(info.value).startswith(f"url:{url}: unsafe archive member {member!r} (")
    assert str(info.value).endswith("whole archive rejected")
    assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*")) == [
        "cache",
        f"cache/{sha(archive)[:16]}-a",  # the verified archive stays cached; nothing was extracted or written
    ]
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "outside.png").exists()


# ---------------------------------------------------------------------------------------------------- s3


def test_s3_prefix(s3_bucket, tmp_path):
    client = s3_client()
    objects = {
        "photos/a.png": encode(photo(1)),
        "photos/deep/b.jpg": encode(photo(2), "JPEG"),
        "photos/bad.png": b"garbage",
        "photos/notes.txt": b"not an image suffix",
        "photos2/other.png": encode(photo(3)),  # a sibling prefix, not under photos/
    }
    for key, data in objects.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=data)
    uri = f"s3://{s3_bucket}/photos"
    download(params({"kind": "s3", "uri": uri}), 0, tmp_path / "raw", tmp_path / "c")
    rows = manifest(tmp_path / "raw")
    assert sorted((r["source"], r["name"]) for r in rows) == [(uri, "a.png"), (uri, "deep/b.jpg")]
    assert next(r for r in rows if r["name"] == "a.png")["sha256"] == sha(objects["photos/a.png"])
    assert [(r["file"], r["source"]) for r in rejected(tmp_path / "raw")] == [("bad.png", uri)]
