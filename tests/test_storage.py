from pathlib import Path

import pytest

from sr.storage import StorageError, download_s3, list_s3, materialize, split_s3, upload_s3


def test_split_s3():
    assert split_s3("s3://bucket/a/b.txt") == ("bucket", "a/b.txt")
    with pytest.raises(StorageError, match="not an s3:// URI"):
        split_s3("/local/path")


def test_round_trip_and_prefix_materialize(s3_bucket, tmp_path):
    src = tmp_path / "w.bin"
    src.write_bytes(b"\x00\x01weights")
    upload_s3(src, f"s3://{s3_bucket}/models/m/model.bin")
    upload_s3(src, f"s3://{s3_bucket}/models/m/sub/config.json")
    assert [o.key for o in list_s3(f"s3://{s3_bucket}/models/")] == ["models/m/model.bin", "models/m/sub/config.json"]
    one = download_s3(f"s3://{s3_bucket}/models/m/model.bin", tmp_path / "dl" / "x.bin")
    assert one.read_bytes() == b"\x00\x01weights"
    folder = materialize(f"s3://{s3_bucket}/models/m", tmp_path / "cache")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "model.bin",
        "sub/config.json",
    ]
    single = materialize(f"s3://{s3_bucket}/models/m/model.bin", tmp_path / "cache2")
    assert single.read_bytes() == b"\x00\x01weights"


def test_unreachable_endpoint_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "secret-id-XYZ")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-key-XYZ")
    with pytest.raises(StorageError) as err:
        download_s3("s3://b/k.bin", tmp_path / "k.bin", retries=0)
    message = str(err.value)
    assert message.startswith("s3://b/k.bin: cannot download: S3 endpoint http://127.0.0.1:9 is unreachable")
    assert "XYZ" not in message and "\n" not in message
    assert not list(Path(tmp_path).iterdir())  # no partial file left behind


def test_atomic_outputs_get_the_modes_of_a_plain_write(tmp_path):
    from sr.storage import atomic_dir, atomic_write_bytes

    (tmp_path / "plain").write_bytes(b"x")
    (tmp_path / "plain-dir").mkdir()
    atomic_write_bytes(tmp_path / "file", b"x")
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "a").write_bytes(b"x")
    mode = lambda name: (tmp_path / name).stat().st_mode & 0o777
    assert mode("file") == mode("plain") != 0o600  # not mkstemp's 0600 (under the usual umask 022: 0644)
    assert mode("folder") == mode("plain-dir") != 0o700
