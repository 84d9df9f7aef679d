"""The `download` stage: gather photos from the configured sources into one clean, deduplicated, split folder.

Output (`out_dir`, replaced as a whole, byte-identical for the same inputs):
    images/<id>.png    upright 8-bit RGB, deterministic PNG bytes (sr.data.images)
    manifest.jsonl     one line per image, sorted by id:
                       {"id", "source", "name", "sha256", "width", "height", "split"}
    rejected.jsonl     one line per refused file, in candidate order: {"file", "source", "reason"}

`id` is the first 16 hex digits of the sha256 of the normalised *pixels* (sr.data.images.content_sha256), not of
the PNG bytes, so it survives a zlib or Pillow upgrade; `sha256` in the manifest is of the original file bytes.
Two files with the same normalised pixels are kept once (the first in source order); the others are listed in
rejected.jsonl as duplicates.

The split is per image and depends only on (seed, content hash): u = sha256(f"{seed}:{hash}") as a number in
[0, 1); u < val_fraction -> val. If fewer than `min_val_images` land there, the images with the smallest u fill
up val. Adding an image therefore never moves another, except that a new image with a very small u can take
the place of one of those fill-up images when the fill-up rule is in use.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.metadata
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from sr.config import BundledSource, DirSource, DownloadParams, S3Source, Source, UrlSource
from sr.data.images import ImageError, content_sha256, load_rgb8, save_png
from sr.storage import list_s3, read_s3_bytes, split_s3

# Real photos that ship inside installed wheels: stem -> (distribution, path as its RECORD lists it).
# pyiqa ships five Kodak photos (I03…I19) and four KonIQ/SPAQ-style phone photos next to its package folder.
BUNDLED: dict[str, tuple[str, str]] = {
    "astronaut": ("scikit-image", "skimage/data/astronaut.png"),
    "chelsea": ("scikit-image", "skimage/data/chelsea.png"),
    "coffee": ("scikit-image", "skimage/data/coffee.png"),
    "hubble_deep_field": ("scikit-image", "skimage/data/hubble_deep_field.jpg"),
    "ihc": ("scikit-image", "skimage/data/ihc.png"),
    "motorcycle_left": ("scikit-image", "skimage/data/motorcycle_left.png"),
    "retina": ("scikit-image", "skimage/data/retina.jpg"),
    "rocket": ("scikit-image", "skimage/data/rocket.jpg"),
    "china": ("scikit-learn", "sklearn/datasets/images/china.jpg"),
    "flower": ("scikit-learn", "sklearn/datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
    "kodim03": ("pyiqa", "ResultsCalibra/ref_dir/I03.bmp"),
    "kodim04": ("pyiqa", "ResultsCalibra/ref_dir/I04.bmp"),
    "kodim06": ("pyiqa", "ResultsCalibra/ref_dir/I06.bmp"),
    "kodim08": ("pyiqa", "ResultsCalibra/ref_dir/I08.bmp"),
    "kodim19": ("pyiqa", "ResultsCalibra/ref_dir/I19.bmp"),
    "spaq_10241": ("pyiqa", "tests/test_efficiency_img_dir/SPAQ_10241.jpg"),
    "frame_4wrw": ("pyiqa", "tests/test_efficiency_img_dir/frame_4wrwr48cdk6rbcjl.jpg"),
    "frame_7gzd": ("pyiqa", "tests/test_efficiency_img_dir/frame_7gzdcz9sif0ekg31.jpg"),
    "frame_9ogw": ("pyiqa", "tests/test_efficiency_img_dir/frame_9ogwhvvy7gfj6jzh.jpg"),
}
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
BACKOFF_S = 1.0  # first retry waits this long, then 2x, 4x, ...
CHUNK = 1 << 20


class SourceError(RuntimeError):
    """A source that cannot be used at all (unknown name, bad checksum, unsafe archive); one line."""


@dataclass(frozen=True)
class Candidate:
    name: str  # as the user knows it: a file name, a path inside a folder/archive, or an S3 key below the prefix
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Summary:
    train: int
    val: int
    rejected: int

    def __str__(self) -> str:
        return f"download: {self.train} train + {self.val} val images, {self.rejected} rejected (see rejected.jsonl)"


# ---------------------------------------------------------------------------------------------------- candidates


def bundled_path(stem: str) -> Path:
    distribution, inner = BUNDLED[stem]
    # The distribution's file list finds the photo without importing the package (skimage/matplotlib cost seconds),
    # and also finds data that a wheel installs beside its package folder (pyiqa's).
    try:
        path = Path(importlib.metadata.distribution(distribution).locate_file(inner))
    except importlib.metadata.PackageNotFoundError:
        raise SourceError(f"bundled photo {stem!r}: {distribution} is not installed") from None
    if not path.is_file():
        raise SourceError(f"bundled photo {stem!r}: {path} is missing from the installed {distribution}")
    return path


def _bundled_candidates(names: list[str] | None) -> list[Candidate]:
    names = list(BUNDLED) if names is None else names
    for stem in names:
        if stem not in BUNDLED:
            raise SourceError(f"bundled: unknown photo {stem!r}; known: {', '.join(BUNDLED)}")
    paths = {stem: bundled_path(stem) for stem in names}
    return [Candidate(stem + path.suffix, path.read_bytes) for stem, path in paths.items()]


def _dir_candidates(root: Path, label: str) -> list[Candidate]:
    if not root.is_dir():
        raise SourceError(f"{label}: no such folder")
    files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    named = sorted((p.relative_to(root).as_posix(), p) for p in files)
    return [Candidate(name, path.read_bytes) for name, path in named]


def _s3_candidates(uri: str, retries: int) -> list[Candidate]:
    bucket, key = split_s3(uri)
    # The URI names a folder: `s3://b/photos` must not also pick up `s3://b/photos2/...`.
    prefix = key if not key or key.endswith("/") else key + "/"
    objects = list_s3(f"s3://{bucket}/{prefix}", retries)
    return [
        Candidate(o.key[len(prefix) :], lambda uri=o.uri: read_s3_bytes(uri, retries))
        for o in objects
        if PurePosixPath(o.key).suffix.lower() in IMAGE_SUFFIXES
    ]


@contextmanager
def _open_source(source: Source, retries: int, cache_dir: Path) -> Iterator[tuple[str, list[Candidate]]]:
    """(label for the manifest, candidates); an archive's extracted copy lives while the caller reads it."""
    match source:
        case BundledSource():
            yield "bundled", _bundled_candidates(source.names)
        case DirSource():
            yield f"dir:{source.path}", _dir_candidates(Path(source.path), f"dir:{source.path}")
        case UrlSource():
            label = f"url:{source.url}"
            archive = fetch_archive(source.url, source.sha256, cache_dir, retries)
            with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".extract-") as tmp:
                extract_archive(archive, Path(tmp), label)
                yield label, _dir_candidates(Path(tmp), label)
        case S3Source():
            yield source.uri, _s3_candidates(source.uri, retries)


# ---------------------------------------------------------------------------------------------------- url


class _Retryable(Exception):
    """A download failure worth another attempt (connection drop, 5xx, 408/429)."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_once(url: str, part: Path) -> None:
    """Append the rest of `url` to `part` (HTTP Range resume); _Retryable on anything worth another try."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return  # nothing left to fetch: `part` already holds the whole file, the checksum will tell
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Retryable(f"HTTP {exc.code}") from None
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from None
    with response:
        if response.status == 206:
            match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != have:
                part.unlink()  # the server resumed somewhere else: start over rather than splice garbage
                raise _Retryable(f"bad Content-Range {response.headers.get('Content-Range')!r}")
            mode = "ab"
        else:
            mode, have = "wb", 0  # the server ignored Range and sends the whole file
        expected = response.length  # bytes still to come, from Content-Length (None if unknown)
        got = 0
        try:
            with part.open(mode) as f:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    got += len(chunk)
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(f"connection lost after {have + got} bytes ({type(exc).__name__})") from None
    # http.client returns short reads silently when the peer closes early, so count the bytes ourselves.
    if expected is not None and got < expected:
        raise _Retryable(f"connection lost after {have + got} of {have + expected} bytes")


def fetch_archive(url: str, sha256: str, cache_dir: Path, retries: int) -> Path:
    """Download `url` into `cache_dir` (resuming a partial file) and verify it; the verified path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    base = re.sub(r"[^A-Za-z0-9._-]", "_", url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]) or "archive"
    final = cache_dir / f"{sha256[:16]}-{base}"
    part = final.with_name(final.name + ".part")
    if final.is_file():
        if file_sha256(final) == sha256:
            return final
        final.unlink()  # a cached copy that went bad: fetch again
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part)
            break
        except _Retryable as exc:
            if attempt == retries:
                raise SourceError(f"{url}: download failed after {retries + 1} attempts ({exc})") from None
            time.sleep(BACKOFF_S * 2**attempt)
    actual = file_sha256(part)
    if actual != sha256:
        part.unlink()
        raise SourceError(f"{url}: sha256 mismatch: expected {sha256}, got {actual} (download deleted)")
    os.replace(part, final)
    return final


def _unsafe_name(name: str) -> str | None:
    """Why an archive member name could write outside the target, or None if it cannot."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in parts:
        return "'..' path component"
    return None


def _link_escapes(member: str, target: str, relative_to_member: bool) -> bool:
    """Whether a link target leaves the archive root (decided on the names alone; links are never created)."""
    if _unsafe_name(target) == "absolute path":
        return True
    depth = list(PurePosixPath(member.replace("\\", "/")).parent.parts) if relative_to_member else []
    for part in target.replace("\\", "/").split("/"):
        if part == "..":
            if not depth:
                return True
            depth.pop()
        elif part not in ("", "."):
            depth.append(part)
    return False


def _check_member(label: str, name: str, link_target: str | None, symbolic: bool) -> None:
    reason = _unsafe_name(name)
    if reason is None and link_target is not None and _link_escapes(name, link_target, symbolic):
        reason = f"link to {link_target!r} points outside the archive"
    if reason is not None:
        raise SourceError(f"{label}: unsafe archive member {name!r} ({reason}); whole archive rejected")


def extract_archive(archive: Path, dest: Path, label: str) -> None:
    """Extract a zip or tar(.gz/.bz2/.xz) into `dest`, regular files only, after checking every member.

    Links are checked (one escaping the root rejects the archive) and then skipped: their targets are members.
    """
    with archive.open("rb") as f:
        is_zip = f.read(2) == b"PK"
    try:
        if is_zip:
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                for info in members:
                    is_link = stat.S_ISLNK(info.external_attr >> 16)
                    _check_member(label, info.filename, zf.read(info).decode() if is_link else None, True)
                for info in members:
                    if not info.is_dir() and not stat.S_ISLNK(info.external_attr >> 16):
                        with zf.open(info) as src:
                            _write_member(dest, info.filename, src)
        else:
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                for m in members:
                    _check_member(label, m.name, m.linkname if (m.issym() or m.islnk()) else None, m.issym())
                for m in members:
                    if m.isfile():
                        src = tf.extractfile(m)
                        assert src is not None  # isfile() members always have data
                        _write_member(dest, m.name, src)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, UnicodeDecodeError) as exc:
        raise SourceError(f"{label}: not a readable zip or tar archive ({type(exc).__name__}: {exc})") from None


def _write_member(dest: Path, name: str, src) -> None:
    path = (dest / name).resolve()
    if not path.is_relative_to(dest.resolve()):  # belt and braces after _check_member
        raise SourceError(f"archive member {name!r} resolves outside {dest}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        shutil.copyfileobj(src, out, CHUNK)


# ---------------------------------------------------------------------------------------------------- split


def split_value(seed: int, sha256: str) -> float:
    """A number in [0, 1) that depends only on (seed, content hash)."""
    digest = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(hashes: list[str], seed: int, val_fraction: float, min_val_images: int) -> dict[str, str]:
    """content hash -> "train" | "val" (see the module docstring for the rule)."""
    u = {h: split_value(seed, h) for h in hashes}
    ranked = sorted(hashes, key=lambda h: (u[h], h))
    # The u < val_fraction images are exactly the lowest-ranked ones, so both rules are "the n lowest".
    n_val = max(sum(u[h] < val_fraction for h in hashes), min(min_val_images, len(hashes)))
    val = set(ranked[:n_val])
    return {h: "val" if h in val else "train" for h in hashes}


# ---------------------------------------------------------------------------------------------------- stage


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sr-onestep" / "downloads"


def _collect(p: DownloadParams, cache_dir: Path, images_dir: Path) -> tuple[list[dict], list[dict]]:
    rows: list[dict] = []
    rejected: list[dict] = []
    kept: dict[str, str] = {}  # content hash -> "<source> <name>" of the copy kept
    for source in p.sources:
        with _open_source(source, p.retries, cache_dir) as (label, candidates):
            for cand in tqdm(candidates, desc=label[:40], unit="file", disable=None):
                try:
                    data = cand.read()
                except OSError as exc:
                    rejected.append({"file": cand.name, "source": label, "reason": f"cannot read ({exc})"})
                    continue
                try:
                    img = load_rgb8(data, cand.name)
                except ImageError as exc:
                    rejected.append({"file": cand.name, "source": label, "reason": exc.reason})
                    continue
                if min(img.size) < p.min_size:
                    reason = f"too small: {img.width}x{img.height}, need at least {p.min_size} on both sides"
                    rejected.append({"file": cand.name, "source": label, "reason": reason})
                    continue
                digest = content_sha256(img)
                if digest in kept:
                    rejected.append({"file": cand.name, "source": label, "reason": f"duplicate of {kept[digest]}"})
                    continue
                if any(other.startswith(digest[:16]) for other in kept):  # 2^-64 odds, but never silently
                    raise SourceError(f"{label} {cand.name}: id {digest[:16]} collides with another image")
                kept[digest] = f"{label} {cand.name}"
                save_png(img, images_dir / f"{digest[:16]}.png")
                rows.append(
                    {
                        "id": digest[:16],
                        "source": label,
                        "name": cand.name,
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "width": img.width,
                        "height": img.height,
                        "content_sha256": digest,  # used for the split, dropped before writing
                    }
                )
    return rows, rejected


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _replace_dir(build: Path, out_dir: Path) -> None:
    """Put `build` at `out_dir`; a reader sees the old folder, the new one, or (after a crash) none, never half."""
    if not out_dir.exists() and not out_dir.is_symlink():
        os.rename(build, out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(out_dir, old)
    os.rename(build, out_dir)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()


def download(p: DownloadParams, seed: int, out_dir: Path, cache_dir: Path | None = None) -> Summary:
    """Build `out_dir` (images/, manifest.jsonl, rejected.jsonl) from every source in `p`, replacing it whole."""
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        os.chmod(build, 0o755)  # mkdtemp's 0700 would otherwise become the output folder's mode
        (build / "images").mkdir()
        rows, rejected = _collect(p, cache_dir, build / "images")
        if not rows:
            first = f" (first: {rejected[0]['file']}: {rejected[0]['reason']})" if rejected else ""
            raise SourceError(f"download: no usable images; {len(rejected)} files rejected{first}")
        hashes = [row["content_sha256"] for row in rows]
        splits = assign_splits(hashes, seed, p.val_fraction, p.min_val_images)
        if all(s == "val" for s in splits.values()):
            raise SourceError(
                f"download: only {len(rows)} usable images, all needed for val (min_val_images={p.min_val_images})"
            )
        manifest = []
        for row in sorted(rows, key=lambda r: r["id"]):
            digest = row.pop("content_sha256")
            manifest.append({**row, "split": splits[digest]})
        (build / "manifest.jsonl").write_text(_jsonl(manifest))
        (build / "rejected.jsonl").write_text(_jsonl(rejected))
        _replace_dir(build, out_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    n_val = sum(row["split"] == "val" for row in manifest)
    return Summary(train=len(manifest) - n_val, val=n_val, rejected=len(rejected))
