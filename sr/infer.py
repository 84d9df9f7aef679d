"""Upscaling images of any size and mode with a model this project writes: the latent tiler and the Python API.

Large images are tiled in LATENT space: the start noise ε is drawn once for the whole latent canvas (so a seed
gives the same picture tiled or not, up to seams), every tile takes its slice, and overlapping tile outputs are
blended with Gaussian weights. y = E(bicubic↑lq), the denoiser and the decoder all run tile by tile, so memory is
bounded by the tile size, not the image size. With several steps, the tiles' x0 predictions are blended at every step
and the sampler's update runs on the whole canvas (MultiDiffusion-style), so tiles never drift apart.

The command line (`sr-upscale`, sr/cli.py) is a thin shell over `Upscaler`.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from itertools import product
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from sr.data.images import to_rgb8
from sr.models.colorfix import ColorFix
from sr.models.colorfix import color_fix as fix_colors
from sr.models.loader import load_model
from sr.models.resshift import ResShiftModel, bicubic_up
from sr.package import model_folder

Box = tuple[int, int, int, int]  # top, bottom, left, right on the latent grid
MIN_LATENT = 8  # smallest latent canvas side: the UNet's deepest GroupNorm needs more than one value
ENCODE_MARGIN = 2  # latent pixels of context around a tile's bicubic↑lq: covers bicubic's 2-pixel support


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


def blend(boxes: list[Box], fn: Callable[[list[Box]], torch.Tensor], size: tuple[int, int], mult: int,
          batch: int, bar: tqdm | None = None) -> torch.Tensor:
    """Gaussian-weighted average of fn(boxes) over the canvas of size·mult; `fn` takes up to `batch` equal-size
    boxes at a time and returns their tiles stacked, (n, C, box_h·mult, box_w·mult)."""
    out = weight = None
    for first in range(0, len(boxes), batch):
        group = boxes[first : first + batch]
        tiles = fn(group)
        if out is None:
            out = tiles.new_zeros(1, tiles.shape[1], size[0] * mult, size[1] * mult)
            weight = tiles.new_zeros(1, 1, size[0] * mult, size[1] * mult)
        w = gaussian_weight(tiles.shape[-2], tiles.shape[-1]).to(tiles)
        for (top, bottom, left, right), tile in zip(group, tiles):
            region = (..., slice(top * mult, bottom * mult), slice(left * mult, right * mult))
            out[region] += tile * w[0]
            weight[region] += w[0]
        if bar is not None:
            bar.update(len(group))
    assert out is not None and weight is not None
    return out / weight


# ---------------------------------------------------------------------------------------------------- upscaling


@torch.no_grad()
def upscale(model: ResShiftModel, lq: torch.Tensor, seed: int, steps: int | None = None, tile: int | None = None,
            overlap: int = 16, batch: int = 4, progress: bool = False) -> torch.Tensor:
    """lq (1,3,h,w) in [-1,1] -> (1,3,h·scale,w·scale) in [-1,1] with `steps` deterministic steps (None: the
    folder's own, 1 for a one-step student, T for the teacher). `tile` / `overlap` are in LQ pixels (None: one
    tile); `batch` tiles go through the encoder, denoiser and decoder together."""
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
    # context around every tile's bicubic↑lq; replicating the border equals bicubic's own edge clamping
    margin = ENCODE_MARGIN * ratio
    lq_margin = F.pad(lq_pad, (margin,) * 4, mode="replicate")

    if tile is None:
        tile_h, tile_w, over = size[0], size[1], 0
    else:
        t_lat = max(align, (tile // ratio) // align * align)
        tile_h, tile_w, over = min(t_lat, size[0]), min(t_lat, size[1]), overlap // ratio
    boxes = [(r, r + tile_h, c, c + tile_w)
             for r, c in product(tile_starts(size[0], tile_h, over), tile_starts(size[1], tile_w, over))]
    channels = model.config.latent_channels
    noise = torch.randn((1, channels, *size), generator=torch.Generator().manual_seed(seed)).to(lq.device)

    def crops(source: torch.Tensor, group: list[Box], unit: int, extra: int = 0) -> torch.Tensor:
        return torch.cat([source[..., t * unit : (b + 2 * extra) * unit, l_ * unit : (r + 2 * extra) * unit]
                          for t, b, l_, r in group])

    def encode(group: list[Box]) -> torch.Tensor:
        up = F.interpolate(crops(lq_margin, group, ratio, ENCODE_MARGIN), scale_factor=scale, mode="bicubic",
                           align_corners=False)
        return model.autoencoder.encode(up)[..., ENCODE_MARGIN : ENCODE_MARGIN + tile_h,
                                            ENCODE_MARGIN : ENCODE_MARGIN + tile_w]

    diffusion = model.schedule(steps)
    bar = tqdm(total=len(boxes) * (diffusion.steps + 2), desc="upscale", disable=not progress or len(boxes) == 1,
               mininterval=1)

    def model_fn(x: torch.Tensor, t: torch.Tensor, _lq: torch.Tensor) -> torch.Tensor:
        def run(group: list[Box]) -> torch.Tensor:
            return model.denoiser(crops(x, group, 1), t.expand(len(group)), crops(lq_pad, group, ratio))
        return blend(boxes, run, size, 1, batch, bar)

    y = blend(boxes, encode, size, 1, batch, bar)
    x0 = diffusion.sample(model_fn, y, lq_pad, noise, deterministic=True)
    hq = blend(boxes, lambda group: model.autoencoder.decode(crops(x0, group, 1)), size, factor, batch, bar)
    bar.close()
    return hq[..., : h * scale, : w * scale].clamp(-1, 1)


# ---------------------------------------------------------------------------------------------------- the API


Picture = TypeVar("Picture", Image.Image, np.ndarray, torch.Tensor)


def to_lq(image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
    """(1,3,h,w) in [-1,1] from a PIL image (any mode), an (h,w[,c]) uint8 array, or a float tensor in [0,1] of
    shape (3,h,w) or (1,3,h,w)."""
    if isinstance(image, torch.Tensor):
        if image.dim() == 3:
            image = image[None]
        if image.dim() != 4 or image.shape[:2] != (1, 3) or not image.is_floating_point():
            raise ValueError(f"expected a float tensor (3,h,w) or (1,3,h,w) in [0,1], got {tuple(image.shape)}")
        return image.float() * 2 - 1
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 array (h,w[,c]), got {image.dtype}")
        image = Image.fromarray(image)
    array = np.asarray(to_rgb8(image, "image"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def like(hq: torch.Tensor, image: Picture) -> Picture:
    """`hq` (1,3,H,W) in [-1,1] as the type (and tensor rank) of the input image."""
    if isinstance(image, torch.Tensor):
        out = (hq.clamp(-1, 1) + 1) / 2
        return out if image.dim() == 4 else out[0]
    array = ((hq[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return array if isinstance(image, np.ndarray) else Image.fromarray(array, "RGB")


class Upscaler:
    """The Python API over every model folder this project writes (a ResShift-family teacher or student, an OSEDiff
    student), a package .tar.gz (verified against its SHA256SUMS), or an s3:// URI of either:

        from sr import Upscaler

        upscaler = Upscaler.from_pretrained("dist/sr-onestep-0.1.0.tar.gz")
        photo = upscaler.upscale(Image.open("photo.jpg"), tile=128, seed=0)   # PIL in, PIL out

    `upscale` takes and returns a PIL image, a uint8 array or a float tensor in [0,1]. Large images are tiled
    (ResShift family) with `tile`/`overlap` in LQ pixels; one seed gives one result, tiled or not up to the seams.
    """

    def __init__(self, model: ResShiftModel | torch.nn.Module, device: str | torch.device = "cpu") -> None:
        self.model, self.device = model.to(device).eval(), torch.device(device)

    @classmethod
    def from_pretrained(cls, spec: str | Path, device: str | torch.device = "cpu",
                        cache_dir: Path | None = None) -> Upscaler:
        """`spec`: a model folder, a package .tar.gz, or an s3:// URI of either (credentials from the environment).
        Packages and S3 objects are unpacked under `cache_dir`, or a temporary folder removed once loaded."""
        if cache_dir is not None:
            return cls(load_model(model_folder(spec, Path(cache_dir)), Path(cache_dir)), device)
        with tempfile.TemporaryDirectory(prefix="sr-upscale-") as scratch:
            return cls(load_model(model_folder(spec, Path(scratch)), Path(scratch)), device)

    @property
    def scale(self) -> int:
        return self.model.scale

    @torch.no_grad()
    def upscale(self, image: Picture, tile: int | None = None, overlap: int = 32, seed: int = 0,
                steps: int | None = None, color_fix: ColorFix = "none", batch: int = 4,
                progress: bool = False) -> Picture:
        """`image` ×scale. `steps`: the folder's own when None; `color_fix`: none, adain or wavelet (docs/methods.md
        §4.6); `batch`: tiles per network call."""
        lq = to_lq(image).to(self.device)
        if isinstance(self.model, ResShiftModel):
            hq = upscale(self.model, lq, seed, steps, tile, overlap, batch, progress)
        else:  # OSEDiff: one untiled pass; its VAE posterior draw (if it samples) is seeded
            self.model.seed = seed
            hq = self.model(lq).clamp(-1, 1)
        if color_fix != "none":
            hq = fix_colors(hq, bicubic_up(lq, self.scale).clamp(-1, 1), color_fix)
        return like(hq, image)
