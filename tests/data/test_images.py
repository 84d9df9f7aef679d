"""sr.data.images: every mode becomes upright 8-bit RGB with known values; bad files raise one-line ImageErrors."""

from __future__ import annotations

import io
import re
import struct

import numpy as np
import pytest
from PIL import Image, ImageFile

from sr.data.images import ImageError, content_sha256, load_rgb8, png_bytes, save_png


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_chunk_types(data: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        types.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]  # several IDATs count once


def pixels(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img)


def test_grayscale_and_bilevel_become_gray_rgb():
    gray = Image.fromarray(np.array([[0, 100, 255]], dtype=np.uint8), "L")
    assert pixels(load_rgb8(encode(gray, "PNG"), "g.png")).tolist() == [[[0] * 3, [100] * 3, [255] * 3]]
    bilevel = gray.point(lambda v: 255 if v > 50 else 0).convert("1")
    assert pixels(load_rgb8(encode(bilevel, "PNG"), "b.png"))[0, :, 0].tolist() == [0, 255, 255]


def test_alpha_is_composited_on_white():
    rgba = Image.fromarray(np.array([[[200, 0, 0, 0], [200, 0, 0, 255], [0, 0, 0, 128]]], dtype=np.uint8), "RGBA")
    out = pixels(load_rgb8(encode(rgba, "PNG"), "a.png"))
    # transparent -> white, opaque -> itself, 50% black -> (0*128 + 255*127 + 127) // 255 = 127
    assert out.tolist() == [[[255, 255, 255], [200, 0, 0], [127, 127, 127]]]
    la = Image.fromarray(np.array([[[10, 255], [10, 0]]], dtype=np.uint8), "LA")
    assert pixels(load_rgb8(encode(la, "PNG"), "la.png")).tolist() == [[[10] * 3, [255] * 3]]


def test_16bit_is_scaled_by_full_range_not_clipped():
    values = np.array([[0, 1000, 25700, 65535]], dtype=np.uint16)  # 25700 = 100 * 257
    img16 = Image.fromarray(values)
    assert img16.mode == "I;16"
    expected = [0, 4, 100, 255]  # round(v * 255 / 65535); clipping would give [0, 255, 255, 255]
    assert pixels(load_rgb8(encode(img16, "PNG"), "x16.png"))[0, :, 0].tolist() == expected
    big_endian = Image.frombytes("I;16B", (4, 1), values.astype(">u2").tobytes())
    assert pixels(load_rgb8(encode(big_endian, "TIFF"), "x16b.tif"))[0, :, 1].tolist() == expected
    as_int32 = Image.fromarray(values.astype(np.int32), "I")
    assert pixels(load_rgb8(encode(as_int32, "TIFF"), "x32.tif"))[0, :, 2].tolist() == expected
    out_of_range = Image.fromarray(np.array([[-5, 70000]], dtype=np.int32), "I")
    with pytest.raises(ImageError, match=r"^neg\.tif: 32-bit integer samples outside 0\.\.65535"):
        load_rgb8(encode(out_of_range, "TIFF"), "neg.tif")


def test_float_images_scale_by_their_range():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert pixels(load_rgb8(encode(unit, "TIFF"), "f.tif"))[0, :, 0].tolist() == [0, 128, 255]
    bytes_range = Image.fromarray(np.array([[0.0, 100.0, 255.0]], dtype=np.float32), "F")
    assert pixels(load_rgb8(encode(bytes_range, "TIFF"), "f255.tif"))[0, :, 0].tolist() == [0, 100, 255]


def test_cmyk_palette_and_multiframe():
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putpixel((0, 0), (0, 0, 0, 0))
    cmyk.putpixel((1, 0), (255, 0, 0, 0))
    assert pixels(load_rgb8(encode(cmyk, "TIFF"), "c.tif")).tolist() == [[[255, 255, 255], [0, 255, 255]]]

    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    assert pixels(load_rgb8(encode(palette, "PNG"), "p.png")).tolist() == [[[255, 0, 0], [0, 255, 0]]]
    transparent = encode(palette, "PNG", transparency=1)  # index 1 is see-through -> white
    assert pixels(load_rgb8(transparent, "pt.png")).tolist() == [[[255, 0, 0], [255, 255, 255]]]
    assert pixels(load_rgb8(encode(palette, "GIF", transparency=1), "pt.gif")).tolist() == [
        [[255, 0, 0], [255, 255, 255]]
    ]

    red, blue = Image.new("RGB", (4, 4), (255, 0, 0)), Image.new("RGB", (4, 4), (0, 0, 255))
    animated = encode(red, "GIF", save_all=True, append_images=[blue])
    assert Image.open(io.BytesIO(animated)).n_frames == 2
    assert pixels(load_rgb8(animated, "anim.gif"))[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_is_applied_and_dropped(fmt):
    # Stored 8 wide x 4 high, left half blue; orientation 6 = "rotate 90 degrees clockwise to display".
    img = Image.new("RGB", (8, 4), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 4, 4))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = load_rgb8(encode(img, fmt, exif=exif), f"rot.{fmt.lower()}")
    assert out.size == (4, 8)
    top, bottom = pixels(out)[1, 2], pixels(out)[6, 2]  # the old left side is now the top
    assert top[2] > 200 and top[0] < 50 and bottom[0] > 200 and bottom[2] < 50
    assert not out.getexif() and "exif" not in out.info


def test_bad_files_raise_one_line_errors():
    good_png = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
    rng = np.random.default_rng(0)
    good_jpg = encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    cases = {
        "empty.png": (b"", "empty file"),
        "text.png": (b"hello, I am not a picture\n", "not an image"),
        "half.jpg": (good_jpg[: len(good_jpg) // 2], "truncated"),
        "half.png": (good_png[: len(good_png) // 2], "truncated"),
        "noiend.png": (good_png[:-12], "corrupt|truncated"),
        "badchunk.png": (good_png[:40] + bytes([good_png[40] ^ 0xFF]) + good_png[41:], "corrupt"),
        "badcrc.png": (good_png[:50] + bytes([good_png[50] ^ 0xFF]) + good_png[51:], "corrupt"),
        "badjpeg.jpg": (good_jpg[:4] + b"\x00" * 200, "corrupt"),
    }
    for name, (data, reason) in cases.items():
        with pytest.raises(ImageError) as info:
            load_rgb8(data, name)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{name}: "), message
        assert info.value.name == name
        assert re.search(reason, info.value.reason), message


def test_truncated_stays_an_error_even_if_pillow_was_made_lenient(monkeypatch):
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what importing pyiqa does
    with pytest.raises(ImageError, match="truncated"):
        load_rgb8(data[: len(data) // 2], "t.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever switched it on


def test_load_from_path_and_missing_path(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(encode(Image.new("RGB", (3, 2), (9, 8, 7)), "PNG"))
    assert pixels(load_rgb8(path, "a.png")).tolist() == [[[9, 8, 7]] * 3] * 2
    with pytest.raises(ImageError, match=r"^gone\.png: cannot read"):
        load_rgb8(tmp_path / "gone.png", "gone.png")


def test_save_png_is_deterministic_metadata_free_and_atomic(tmp_path):
    rng = np.random.default_rng(2)
    img = Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    img.info["dpi"] = (300, 300)
    img.info["icc_profile"] = b"junk profile"
    save_png(img, tmp_path / "sub" / "a.png")
    save_png(img.copy(), tmp_path / "b.png")
    a, b = (tmp_path / "sub" / "a.png").read_bytes(), (tmp_path / "b.png").read_bytes()
    assert a == b == png_bytes(img)
    assert png_chunk_types(a) == [b"IHDR", b"IDAT", b"IEND"]  # no pHYs, iCCP, tEXt, tIME, eXIf
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), np.asarray(img))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "b.png", "sub"]  # no temp files left
    assert content_sha256(img) == content_sha256(Image.open(tmp_path / "b.png").convert("RGB"))
    with pytest.raises(ValueError, match="mode CMYK"):
        save_png(Image.new("CMYK", (2, 2)), tmp_path / "c.png")
