"""Where artifacts live: local paths or `s3://bucket/key` URIs, behind a few plain functions.

The S3 endpoint and credentials come from the environment only (boto3's own variables: AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, ...), so they never reach params, dvc.yaml or logs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class StorageError(RuntimeError):
    """An S3 operation that failed after retries; the message names the URI and never a credential."""


def is_s3(uri: str | os.PathLike[str]) -> bool:
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> (`bucket`, `some/key`)."""
    if not is_s3(uri):
        raise StorageError(f"{uri}: not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise StorageError(f"{uri}: no bucket in URI")
    return bucket, key


def s3_client(retries: int = 3):
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": retries + 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path"},
    )
    return boto3.client("s3", config=config, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS default endpoint"


def _fail(uri: str, action: str, exc: Exception) -> StorageError:
    from botocore.exceptions import ClientError, EndpointConnectionError

    if isinstance(exc, EndpointConnectionError):
        return StorageError(f"{uri}: cannot {action}: S3 endpoint {_endpoint()} is unreachable")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "?")
        return StorageError(f"{uri}: cannot {action}: S3 said {code}")
    return StorageError(f"{uri}: cannot {action}: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class S3Object:
    uri: str
    key: str
    size: int
    etag: str


def list_s3(prefix_uri: str, retries: int = 3) -> list[S3Object]:
    """Every object under a prefix, sorted by key (so callers see a stable order)."""
    bucket, prefix = split_s3(prefix_uri)
    client = s3_client(retries)
    objects: list[S3Object] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                objects.append(S3Object(f"s3://{bucket}/{key}", key, item["Size"], item["ETag"].strip('"')))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line naming the URI
        raise _fail(prefix_uri, "list", exc) from None
    return sorted(objects, key=lambda o: o.key)


# tempfile creates files 0600 and folders 0700; what we publish gets the modes a plain open()/mkdir would give
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE, DIR_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


def download_s3(uri: str, dest: Path, retries: int = 3) -> Path:
    """Download one object atomically: a partial download never sits at `dest`."""
    bucket, key = split_s3(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        s3_client(retries).download_file(bucket, key, tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, dest)
    except Exception as exc:  # noqa: BLE001
        Path(tmp).unlink(missing_ok=True)
        raise _fail(uri, "download", exc) from None
    return dest


def upload_s3(src: Path, uri: str, retries: int = 3) -> None:
    bucket, key = split_s3(uri)
    try:
        s3_client(retries).upload_file(str(src), bucket, key)
    except Exception as exc:  # noqa: BLE001
        raise _fail(uri, "upload", exc) from None


def read_s3_bytes(uri: str, retries: int = 3) -> bytes:
    bucket, key = split_s3(uri)
    try:
        return s3_client(retries).get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:  # noqa: BLE001
        raise _fail(uri, "read", exc) from None


def write_s3_bytes(data: bytes, uri: str, retries: int = 3) -> None:
    bucket, key = split_s3(uri)
    try:
        s3_client(retries).put_object(Bucket=bucket, Key=key, Body=data)
    except Exception as exc:  # noqa: BLE001
        raise _fail(uri, "write", exc) from None


def materialize(uri: str, cache_dir: Path, retries: int = 3) -> Path:
    """A local path for a checkpoint given as a path, an s3:// object or an s3:// prefix (a model folder).

    Local paths are returned as they are; S3 content is downloaded under `cache_dir`, keeping relative key paths.
    """
    if not is_s3(uri):
        path = Path(uri)
        if not path.exists():
            raise StorageError(f"{uri}: no such file or folder")
        return path
    _, key = split_s3(uri)
    objects = list_s3(uri.rstrip("/") + "/", retries) if not key or uri.endswith("/") else []
    if not objects:
        exact = [o for o in list_s3(uri, retries) if o.key == key]
        if exact:
            return download_s3(uri, cache_dir / Path(key).name, retries)
        objects = list_s3(uri.rstrip("/") + "/", retries)
    if not objects:
        raise StorageError(f"{uri}: no objects at this S3 location")
    root = cache_dir / Path(key.rstrip("/")).name
    base = key.rstrip("/") + "/"
    for obj in objects:
        download_s3(obj.uri, root / obj.key[len(base) :], retries)
    return root


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, value: object) -> None:
    """Indented, keys sorted, a final newline: the same value always gives the same bytes."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temp sibling folder to fill; on success it replaces `path` whole, on error it is removed.

    A killed writer never leaves a folder at `path` that looks complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    tmp.chmod(DIR_MODE)
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
