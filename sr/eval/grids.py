"""Comparison grids: one row per image, columns LQ | bicubic | teacher-T | each student | HQ, each cell with a
zoomed crop under it, and a header naming the columns."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from sr.storage import atomic_write_bytes

HEADER = 14  # pixels of column titles
PAD = 2


def _rgb8(x: torch.Tensor) -> np.ndarray:
    """(3,H,W) in [-1,1] -> (H,W,3) uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _cell(image: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    """The image, a red frame where the crop is, and the crop magnified (nearest) below it, same width."""
    top, left, size = box
    framed = image.copy()
    framed[top, left:left + size] = framed[top + size - 1, left:left + size] = (255, 0, 0)
    framed[top:top + size, left] = framed[top:top + size, left + size - 1] = (255, 0, 0)
    crop = Image.fromarray(image[top:top + size, left:left + size])
    width = image.shape[1]
    zoomed = np.asarray(crop.resize((width, width), Image.NEAREST))  # square crop, shown at full width
    return np.concatenate([framed, zoomed], axis=0)


def comparison_grid(columns: dict[str, torch.Tensor], path: Path, zoom: int) -> None:
    """`columns`: title -> (N,3,H,W) in [-1,1], all of one HQ size (upsample the LQ before). Writes a PNG."""
    titles = list(columns)
    n, _, h, w = columns[titles[0]].shape
    size = max(4, min(h, w) // zoom)
    box = (h // 2 - size // 2, w // 2 - size // 2, size)  # a square at the center
    rows = []
    for i in range(n):
        cells = [_cell(_rgb8(columns[t][i]), box) for t in titles]
        gap = np.full((cells[0].shape[0], PAD, 3), 255, np.uint8)
        rows.append(np.concatenate([part for c in cells for part in (c, gap)][:-1], axis=1))
    band = np.full((PAD, rows[0].shape[1], 3), 255, np.uint8)
    body = np.concatenate([part for r in rows for part in (r, band)][:-1], axis=0)
    canvas = Image.new("RGB", (body.shape[1], body.shape[0] + HEADER), "white")
    canvas.paste(Image.fromarray(body), (0, HEADER))
    draw = ImageDraw.Draw(canvas)
    for k, title in enumerate(titles):
        draw.text((k * (w + PAD) + 2, 1), title[: max(3, w // 6)], fill=(0, 0, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=6)
    atomic_write_bytes(path, buffer.getvalue())
