"""`sr-upscale IN OUT --model M`: upscale an image of any size and mode with a one-step (or few-step) model.

Large images are tiled in LATENT space: the start noise ε is drawn once for the whole latent canvas (so a seed
gives the same picture tiled or not, up to seams), every tile takes its slice, and overlapping tile outputs are
blended with Gaussian weights. y = E(bicubic↑lq), the denoiser and the decoder all run tile by tile, so memory is
bounded by the tile size, not the image size. With several steps, the tiles' x0 predictions are blended at every step
and the sampler's update runs on the whole canvas (MultiDiffusion-style), so tiles never drift apart.

`--model` is a model folder (ResShift family: teacher or one-step student; or an OSEDiff student, which runs
untiled), a package `.tar.gz` from the package stage (verified against its SHA256SUMS), or an s3:// URI of either.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable
from itertools import product
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from sr.data.images import ImageError, load_rgb8, save_png
from sr.models.loader import load_model
from sr.models.resshift import ResShiftModel
from sr.package import PackageError, unpack_package
from sr.storage import StorageError, materialize

Box = tuple[int, int, int, int]  # top, bottom, left, right on the latent grid
MIN_LATENT = 8  # smallest latent canvas side: the UNet's deepest GroupNorm needs more than one value
ENCODE_MARGIN = 2  # latent pixels of context around a tile's bicubic↑lq: covers bicubic's 2-pixel support


# ---------------------------------------------------------------------------------------------------- loading


def resolve_model(spec: str, cache_dir: Path) -> Path:
    """A local model folder for a folder, a package .tar.gz (verified), or an s3:// URI of either."""
    path = materialize(spec, cache_dir)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return unpack_package(path, Path(tempfile.mkdtemp(dir=cache_dir, prefix="package-")))
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{spec}: not a model folder or package (no config.json)")
    return path


# ---------------------------------------------------------------------------------------------------- tiling


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` covering [0, size), consecutive ones sharing at least `overlap`."""
    if tile >= size:
        return [0]
    stride = max(1, tile - overlap)
    count = math.ceil((size - tile) / stride) + 1
    return sorted({round(i * (size - tile) / (count - 1)) for i in range(count)})


def gaussian_weight(height: int, width: int) -> torch.Tensor:
    """(1,1,h,w) weights peaking at the tile center, sigma = size/4, never zero (so every pixel is covered)."""
    def axis(n: int) -> torch.Tensor:
        x = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
        return torch.exp(-0.5 * (x / max(n / 4, 1e-6)) ** 2)

    return (axis(height)[:, None] * axis(width)[None, :])[None, None]


def blend(boxes: list[Box], fn: Callable[[Box], torch.Tensor], size: tuple[int, int], mult: int,
          bar: tqdm | None = None) -> torch.Tensor:
    """Gaussian-weighted average of fn(box) (shape (1, C, box_h·mult, box_w·mult)) over the canvas of size·mult."""
    out = weight = None
    for top, bottom, left, right in boxes:
        tile = fn((top, bottom, left, right))
        if out is None:
            out = tile.new_zeros(1, tile.shape[1], size[0] * mult, size[1] * mult)
            weight = tile.new_zeros(1, 1, size[0] * mult, size[1] * mult)
        w = gaussian_weight(tile.shape[-2], tile.shape[-1]).to(tile)
        region = (..., slice(top * mult, bottom * mult), slice(left * mult, right * mult))
        out[region] += tile * w
        weight[region] += w
        if bar is not None:
            bar.update(1)
    assert out is not None and weight is not None
    return out / weight


# ---------------------------------------------------------------------------------------------------- upscaling


@torch.no_grad()
def upscale(model: ResShiftModel, lq: torch.Tensor, seed: int, steps: int | None = None, tile: int | None = None,
            overlap: int = 16, progress: bool = False) -> torch.Tensor:
    """lq (1,3,h,w) in [-1,1] -> (1,3,h·scale,w·scale) in [-1,1] with `steps` deterministic steps (None: the
    folder's own, 1 for a one-step student, T for the teacher). `tile` / `overlap` are in LQ pixels; None: one
    tile."""
    scale, factor = model.scale, int(model.autoencoder.factor)
    if factor % scale:
        raise ValueError(f"tiling needs the autoencoder factor ({factor}) to be a multiple of the scale ({scale})")
    ratio = factor // scale  # lq pixels per latent pixel
    align = model.size_multiple
    h, w = lq.shape[-2:]
    # pad (replicating edges) to whole latent multiples of `align`, and to MIN_LATENT so norms see several values
    least = ratio * max(align, math.ceil(MIN_LATENT / align) * align)
    pad_h, pad_w = max(least, h + -h % (ratio * align)) - h, max(least, w + -w % (ratio * align)) - w
    lq_pad = F.pad(lq, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else lq
    size = (lq_pad.shape[-2] // ratio, lq_pad.shape[-1] // ratio)

    if tile is None:
        tile_h, tile_w, over = size[0], size[1], 0
    else:
        t_lat = max(align, (tile // ratio) // align * align)
        tile_h, tile_w, over = min(t_lat, size[0]), min(t_lat, size[1]), overlap // ratio
    boxes = [(r, r + tile_h, c, c + tile_w)
             for r, c in product(tile_starts(size[0], tile_h, over), tile_starts(size[1], tile_w, over))]
    device = lq.device
    channels = model.config.latent_channels
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((1, channels, *size), generator=generator).to(device)

    def lq_of(box: Box, margin: int = 0) -> tuple[torch.Tensor, Box]:
        top, bottom = max(0, box[0] - margin), min(size[0], box[1] + margin)
        left, right = max(0, box[2] - margin), min(size[1], box[3] + margin)
        crop = lq_pad[..., top * ratio:bottom * ratio, left * ratio:right * ratio]
        return crop, (box[0] - top, box[1] - top, box[2] - left, box[3] - left)

    def encode(box: Box) -> torch.Tensor:
        crop, inner = lq_of(box, ENCODE_MARGIN)
        up = F.interpolate(crop, scale_factor=scale, mode="bicubic", align_corners=False)
        return model.autoencoder.encode(up)[..., inner[0]:inner[1], inner[2]:inner[3]]

    diffusion = model.schedule(steps)
    ticks = len(boxes) * (diffusion.steps + 2)
    bar = tqdm(total=ticks, desc="upscale", disable=not progress or len(boxes) == 1, mininterval=1)

    def model_fn(x: torch.Tensor, t: torch.Tensor, _lq: torch.Tensor) -> torch.Tensor:
        def one(box: Box) -> torch.Tensor:
            return model.denoiser(x[..., box[0]:box[1], box[2]:box[3]], t, lq_of(box)[0])
        return blend(boxes, one, size, 1, bar)

    y = blend(boxes, encode, size, 1, bar)
    x0 = diffusion.sample(model_fn, y, lq_pad, noise, deterministic=True)
    hq = blend(boxes, lambda b: model.autoencoder.decode(x0[..., b[0]:b[1], b[2]:b[3]]), size, factor, bar)
    bar.close()
    return hq[..., : h * scale, : w * scale].clamp(-1, 1)


def to_tensor(img) -> torch.Tensor:
    """PIL RGB -> (1,3,h,w) float in [-1,1]."""
    array = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def to_image(x: torch.Tensor) -> Image.Image:
    array = ((x[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def save_image(img, path: Path) -> None:
    """PNG through the project's deterministic writer; any other extension through Pillow; atomic either way."""
    if path.suffix.lower() == ".png":
        save_png(img, path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        img.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sr-upscale", description=__doc__.splitlines()[0])
    ap.add_argument("input", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--model", required=True, help="model folder, package .tar.gz, or s3:// URI of either")
    ap.add_argument("--tile", type=int, default=128, help="tile size in LQ pixels (0: never tile; default 128)")
    ap.add_argument("--overlap", type=int, default=32, help="tile overlap in LQ pixels (default 32)")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model folder's own)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=None, help="where s3:// models and packages are unpacked")
    args = ap.parse_args(argv)

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    try:
        img = load_rgb8(args.input, str(args.input))
        with tempfile.TemporaryDirectory(prefix="sr-upscale-") as scratch:
            cache = args.cache_dir or Path(scratch)
            cache.mkdir(parents=True, exist_ok=True)
            model = load_model(resolve_model(args.model, cache))
            lq = to_tensor(img).to(args.device)
            if isinstance(model, ResShiftModel):
                model.to(args.device)
                tile = args.tile if args.tile > 0 else None
                hq = upscale(model, lq, args.seed, args.steps, tile, args.overlap, progress=True)
            else:
                model.seed = args.seed
                hq = model.to(args.device)(lq)
        save_image(to_image(hq), args.output)
    except (ImageError, StorageError, PackageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.input} ({img.width}x{img.height}) -> {args.output} ({hq.shape[-1]}x{hq.shape[-2]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
