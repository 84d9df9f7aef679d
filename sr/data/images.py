"""Open any image file and normalise it to upright 8-bit RGB; write PNGs with deterministic bytes.

Decisions, so every later stage sees one kind of image:
- Orientation: the EXIF Orientation tag is applied, then dropped.
- Transparency (RGBA, LA, La, RGBa, PA, P with a `transparency` entry) is composited on WHITE, the way viewers and
  browsers show such photos; black would turn anti-aliased edges into dark halos.
- High bit depths are scaled by their full range, never clipped: 16-bit v -> round(v * 255 / 65535); mode `I`
  holds 16-bit data in practice (older Pillow opens 16-bit PNGs so) and anything outside 0..65535 is refused;
  float `F` images are taken as 0..1 (or 0..255 / 0..65535 when their maximum says so). 16-bit RGB files are
  already reduced to 8 bits by Pillow's decoder (it keeps the high byte).
- CMYK and other colour modes go through Pillow's own conversion; embedded ICC profiles are ignored (sRGB assumed).
- Multi-frame files (GIF, APNG, multi-page TIFF): the first frame.
- Truncated files are errors: Pillow's LOAD_TRUNCATED_IMAGES is forced False while loading, PNG CRCs are verified.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

PNG_COMPRESS_LEVEL = 6  # fixed, so the same pixels always give the same bytes with one zlib


# File signatures, so a broken PNG is reported as corrupt rather than as "not an image".
_MAGIC = {
    "PNG": b"\x89PNG\r\n\x1a\n",
    "JPEG": b"\xff\xd8\xff",
    "GIF": b"GIF8",
    "TIFF": b"II*\x00",
    "TIFF (big-endian)": b"MM\x00*",
    "BMP": b"BM",
    "WebP": b"RIFF",
}


class ImageError(ValueError):
    """A file that cannot become an RGB image; the message is one line: `<name>: <reason>`."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _open(data: bytes, name: str) -> Image.Image:
    if not data:
        raise ImageError(name, "empty file (0 bytes)")
    # pyiqa switches Pillow's global leniency on when imported; a grey-padded truncated photo must fail here.
    lenient = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        # verify() walks the whole file (PNG CRCs, chunk lengths) but leaves the image unusable, so open twice.
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        img = Image.open(io.BytesIO(data))
        img.load()
    except UnidentifiedImageError:
        magic = next((fmt for fmt, sig in _MAGIC.items() if data.startswith(sig)), None)
        if magic is not None:
            raise ImageError(name, f"corrupt image ({magic} signature, but Pillow cannot parse it)") from None
        raise ImageError(name, "not an image (unknown or unsupported format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(name, f"too many pixels ({_one_line(exc)})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, ZeroDivisionError) as exc:
        reason = _one_line(exc)
        kind = "truncated" if "truncat" in reason.lower() else "corrupt"
        raise ImageError(name, f"{kind} image ({type(exc).__name__}: {reason})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient
    if img.width == 0 or img.height == 0:
        raise ImageError(name, f"zero-size image ({img.width}x{img.height})")
    return img


def _white_composite(rgba: Image.Image) -> Image.Image:
    a = np.asarray(rgba, dtype=np.uint32)
    alpha = a[..., 3:4]
    # Integer "over" on white with round-half-up: out = (c*a + 255*(255-a) + 127) // 255.
    out = (a[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
    return Image.fromarray(out.astype(np.uint8), "RGB")


def _gray_from_array(values: np.ndarray, full_scale: float, name: str) -> Image.Image:
    if not np.all(np.isfinite(values)):
        raise ImageError(name, "float image holds NaN or infinity")
    scaled = np.clip(values.astype(np.float64), 0.0, full_scale) * (255.0 / full_scale)
    return Image.fromarray(np.floor(scaled + 0.5).astype(np.uint8), "L").convert("RGB")


def to_rgb8(img: Image.Image, name: str) -> Image.Image:
    """Upright 8-bit RGB copy of an already loaded image, with no metadata attached."""
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block is a bad file, not a crash
        raise ImageError(name, f"unreadable EXIF orientation ({_one_line(exc)})") from None
    mode = img.mode
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    match mode:
        case "RGB":
            out = img
        case "RGBA" | "LA" | "La" | "RGBa" | "PA":
            out = _white_composite(img.convert("RGBA"))
        case "I;16" | "I;16L" | "I;16B" | "I;16N":
            out = _gray_from_array(np.asarray(img), 65535.0, name)
        case "I":
            values = np.asarray(img)
            if values.min() < 0 or values.max() > 65535:
                raise ImageError(name, "32-bit integer samples outside 0..65535 are not supported")
            out = _gray_from_array(values, 65535.0, name)
        case "F":
            values = np.asarray(img)
            top = float(np.nanmax(values)) if values.size else 0.0
            full_scale = 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else 65535.0
            out = _gray_from_array(values, full_scale, name)
        case _:
            try:
                out = img.convert("RGB")  # 1, L, P, CMYK, YCbCr, LAB, HSV, RGBX
            except (ValueError, OSError) as exc:
                raise ImageError(name, f"cannot convert mode {mode} to RGB ({_one_line(exc)})") from None
    # A fresh image: no EXIF, ICC profile, DPI or text chunks can ride along into the PNG.
    return Image.frombytes("RGB", out.size, out.convert("RGB").tobytes())


def load_rgb8(path_or_bytes: str | os.PathLike[str] | bytes, name: str) -> Image.Image:
    """Open an image file (path or its bytes) as upright 8-bit RGB; ImageError names `name` and the reason."""
    if isinstance(path_or_bytes, bytes):
        data = path_or_bytes
    else:
        try:
            data = Path(path_or_bytes).read_bytes()
        except OSError as exc:
            raise ImageError(name, f"cannot read ({_one_line(exc)})") from None
    # Image.open() sits on frame 0 of a multi-frame file, and load() decoded exactly that frame.
    return to_rgb8(_open(data, name), name)


def content_sha256(img: Image.Image) -> str:
    """sha256 of the pixels themselves (size + mode + raw bytes): stable across PNG encoders and zlib versions."""
    header = f"{img.mode} {img.width}x{img.height}\n".encode()
    return hashlib.sha256(header + img.tobytes()).hexdigest()


def png_bytes(img: Image.Image) -> bytes:
    """PNG bytes that depend only on the pixels: fixed compression, no metadata chunks."""
    if img.mode not in ("L", "RGB", "RGBA"):
        raise ValueError(f"png_bytes: mode {img.mode} not supported (want L, RGB or RGBA)")
    clean = Image.frombytes(img.mode, img.size, img.tobytes())
    buf = io.BytesIO()
    clean.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    return buf.getvalue()


def save_png(img: Image.Image, path: str | os.PathLike[str]) -> None:
    """Write `png_bytes(img)` atomically: readers see the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(png_bytes(img))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}


def save_image(img: Image.Image, path: str | os.PathLike[str], quality: int | None = None) -> None:
    """PNG through the deterministic writer (`save_png`); jpg/webp (by the path's suffix) through Pillow at
    `quality` (Pillow's default when None); atomic either way."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".").replace("jpeg", "jpg")
    if suffix not in IMAGE_FORMATS:
        raise ValueError(f"{path}: unknown image format {path.suffix!r} (use {', '.join(IMAGE_FORMATS)})")
    if suffix == "png":
        save_png(img, path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        img.save(tmp, format=IMAGE_FORMATS[suffix], **({} if quality is None else {"quality": quality}))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
