"""Model packages on S3: `publish` with an atomic `latest` pointer, and `fetch` (`sr-fetch`) with full verification.

Layout under a prefix: `<prefix>/<name>/<version>/{<name>-<version>.tar.gz, SHA256SUMS, selection.json,
<name>-<version>.tar.gz.sha256}` and `<prefix>/<name>/latest` holding a version string. The `.sha256` object is
written after everything else of a version and the pointer after that, so a half-written publish is never fetched:
fetchers resolve a version only through the pointer or through an existing `.sha256` object.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from sr.package import SELECTION_FILE, PackageError, sha256_file, unpack_package
from sr.storage import StorageError, download_s3, list_s3, read_s3_bytes, upload_s3, write_s3_bytes


def version_uri(prefix: str, name: str, version: str, filename: str) -> str:
    return f"{prefix.rstrip('/')}/{name}/{version}/{filename}"


def exists_s3(uri: str, retries: int = 3) -> bool:
    return any(obj.uri == uri for obj in list_s3(uri, retries))


def latest_version(prefix: str, name: str, retries: int = 3) -> str | None:
    """The version the `latest` pointer names, or None when nothing is published yet."""
    pointer = f"{prefix.rstrip('/')}/{name}/latest"
    return read_s3_bytes(pointer, retries).decode().strip() if exists_s3(pointer, retries) else None


def publish(
    tarball: Path, dest_prefix: str, name: str, version: str, selection: Path | None = None, retries: int = 3
) -> str:
    """Upload one package version (plus `selection`, the package's selection.json: which student, scored how), then
    move `latest`; returns the version. A version is immutable: republishing it with other content is refused."""
    tar_name = f"{name}-{version}.tar.gz"
    if tarball.name != tar_name:
        raise ValueError(f"{tarball}: expected a file named {tar_name}")
    with tarfile.open(tarball, "r:gz") as tf:
        if f"{name}-{version}/SHA256SUMS" not in tf.getnames():
            raise PackageError(f"{tarball}: has no {name}-{version}/SHA256SUMS")
        sums = tf.extractfile(f"{name}-{version}/SHA256SUMS").read()
    digest = sha256_file(tarball)
    checksum_uri = version_uri(dest_prefix, name, version, tar_name + ".sha256")
    if exists_s3(checksum_uri, retries) and read_s3_bytes(checksum_uri, retries).decode().split()[0] != digest:
        raise PackageError(f"{checksum_uri}: {name}@{version} is published with other content; bump the version")
    upload_s3(tarball, version_uri(dest_prefix, name, version, tar_name), retries)
    write_s3_bytes(sums, version_uri(dest_prefix, name, version, "SHA256SUMS"), retries)
    if selection is not None:
        write_s3_bytes(selection.read_bytes(), version_uri(dest_prefix, name, version, SELECTION_FILE), retries)
    write_s3_bytes(f"{digest}  {tar_name}\n".encode(), checksum_uri, retries)  # from here on the version exists
    write_s3_bytes(f"{version}\n".encode(), f"{dest_prefix.rstrip('/')}/{name}/latest", retries)
    return version


def fetch(spec: str, dest: Path, prefix: str, retries: int = 3) -> Path:
    """Download `NAME`, `NAME@latest` or `NAME@VERSION`, verify it and unpack its files into `dest` (absent or empty).
    On any failure nothing is left at `dest`."""
    name, _, version = spec.partition("@")
    if not name or "/" in name:
        raise PackageError(f"{spec!r}: expected NAME, NAME@VERSION or NAME@latest")
    if version in ("", "latest"):
        version = latest_version(prefix, name, retries)
        if version is None:
            raise PackageError(f"{name}: nothing published under {prefix.rstrip('/')}/{name}/")
    tar_name = f"{name}-{version}.tar.gz"
    checksum_uri = version_uri(prefix, name, version, tar_name + ".sha256")
    if not exists_s3(checksum_uri, retries):
        raise PackageError(f"{name}@{version}: not published ({checksum_uri} does not exist)")
    expected = read_s3_bytes(checksum_uri, retries).decode().split()[0]
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PackageError(f"{dest}: already exists and is not an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.fetch-"))
    try:
        tarball = download_s3(version_uri(prefix, name, version, tar_name), staging / tar_name, retries)
        if sha256_file(tarball) != expected:
            raise PackageError(f"{tar_name}: sha256 differs from {checksum_uri}: the download is corrupt")
        unpacked = unpack_package(tarball, staging / "unpacked")
        if unpacked.name != f"{name}-{version}":
            raise PackageError(f"{tar_name}: holds {unpacked.name}/, not {name}-{version}/")
        os.replace(unpacked, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    """`sr-fetch NAME[@VERSION|@latest] DEST [--prefix s3://bucket/models]`."""
    parser = argparse.ArgumentParser(prog="sr-fetch", description="Download, verify and unpack a model package.")
    parser.add_argument("spec", help="NAME, NAME@VERSION or NAME@latest")
    parser.add_argument("dest", type=Path, help="folder to create with the package files")
    parser.add_argument("--prefix", default=os.environ.get("SR_MODELS_PREFIX"), help="default: $SR_MODELS_PREFIX")
    parser.add_argument("--attempts", type=int, default=4, help="tries when S3 fails (default 4)")
    args = parser.parse_args(argv)
    if not args.prefix:
        print("sr-fetch: no S3 prefix: pass --prefix s3://bucket/models or set SR_MODELS_PREFIX", file=sys.stderr)
        return 1
    for attempt in range(1, args.attempts + 1):
        try:
            print(fetch(args.spec, args.dest, args.prefix, retries=0))
            return 0
        except StorageError as exc:  # S3 trouble may pass: wait and try again
            error = f"{exc} (after {attempt} attempts)"
            time.sleep(2 ** (attempt - 1) if attempt < args.attempts else 0)
        except PackageError as exc:
            error = str(exc)
            break
    print(f"sr-fetch: {error}", file=sys.stderr)
    return 1
