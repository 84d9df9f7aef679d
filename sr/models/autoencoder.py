"""Latent autoencoders behind one small interface: `factor`, `channels`, `encode(x)`, `decode(z)`.

Images are in [-1, 1], shape (B, 3, H, W); latents are (B, channels, H / factor, W / factor). Autoencoders are
frozen first stages: they hold no trainable state the diffusion recipes touch, but gradients still flow through
`decode` (image-space losses on a predicted latent need that).

Inside a model folder an autoencoder is saved by kind, and `load_autoencoder` reads back exactly what
`save_autoencoder` wrote: pixel_unshuffle has no weights; pixel_unshuffle_refine (a student's own decoder) is
`decoder.safetensors`; vq_f4 is `autoencoder.safetensors` (VQF4 at the official config); kl is a diffusers folder
`autoencoder/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from sr.config import AutoencoderParams, ModelAutoencoderKind, VQParams
from sr.models.official import import_vq_f4
from sr.models.vq_f4 import VQF4
from sr.storage import materialize

VQ_FILE = "autoencoder.safetensors"
DECODER_FILE = "decoder.safetensors"
KL_DIR = "autoencoder"


@runtime_checkable
class Autoencoder(Protocol):
    factor: int  # spatial downscale
    channels: int  # latent channels

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


def _check_divisible(x: torch.Tensor, factor: int, who: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{who}.encode: expected an image (B, 3, H, W), got shape {tuple(x.shape)}")
    if x.shape[-2] % factor or x.shape[-1] % factor:
        raise ValueError(f"{who}.encode: image size {tuple(x.shape[-2:])} is not a multiple of factor {factor}")


class PixelUnshuffle(nn.Module):
    """Lossless space-to-depth: each factor x factor RGB patch becomes 3 * factor^2 channels. No weights."""

    def __init__(self, factor: int = 4) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"PixelUnshuffle: factor must be >= 1, got {factor}")
        self.factor = factor
        self.channels = 3 * factor * factor

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _check_divisible(x, self.factor, "PixelUnshuffle")
        return F.pixel_unshuffle(x, self.factor)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4 or z.shape[1] != self.channels:
            raise ValueError(f"PixelUnshuffle.decode: expected (B, {self.channels}, h, w), got {tuple(z.shape)}")
        return F.pixel_shuffle(z, self.factor)


class PixelUnshuffleRefine(PixelUnshuffle):
    """Pixel unshuffle with a learned decoder: decode(z) = x + refine([x, phase]), x = pixel_shuffle(z)
    (docs/methods.md §2.4).

    A latent-space prediction's errors decode, through pixel shuffle alone, into factor×factor blocks: no output
    pixel sees the next cell. `refine` is a small full-resolution conv net whose 7-px receptive field spans the cell
    borders; its last layer starts at zero, so a fresh one decodes exactly like PixelUnshuffle. The encoder stays the
    lossless space-to-depth, so a student with its own decoder still reads the teacher's latents.

    `phase` (2·factor channels: one-hot row and column of each pixel inside its cell) tells `refine` where the cell
    borders are. A plain conv net is translation invariant, so it cannot tell a cell border from any other edge and
    smooths both; with the phase it can treat the border alone (sinsr, held-out heavy set: LPIPS 0.600 vs 0.608 at the
    same grid penalty). A folder written before the phase (3 input channels) loads and decodes as it was trained."""

    def __init__(self, factor: int = 4, width: int = 16, phase: bool = True) -> None:
        super().__init__(factor)
        self.phase = phase
        self.refine = nn.Sequential(
            nn.Conv2d(3 + 2 * factor * phase, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )
        with torch.no_grad():
            self.refine[-1].weight.zero_()
            self.refine[-1].bias.zero_()
        # The phase is pixel_shuffle of a constant latent (channel c·f² + i·f + j lands on offset (i, j) of output
        # channel c): built from ops that every export path already handles, at any image size.
        i, j = torch.arange(factor).repeat_interleave(factor), torch.arange(factor).repeat(factor)
        rows, cols = (i == torch.arange(factor)[:, None]), (j == torch.arange(factor)[:, None])
        self.register_buffer("cells", torch.cat([rows, cols]).flatten().float()[None, :, None, None], persistent=False)

    def phase_map(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 2·factor, H, W): channels k and factor + k are 1 where a pixel's row, resp. column, in its cell is k."""
        return F.pixel_shuffle(self.cells.to(z.dtype).expand(z.shape[0], -1, *z.shape[-2:]), self.factor)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = super().decode(z)
        return x + self.refine(torch.cat([x, self.phase_map(z)], dim=1) if self.phase else x)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """decode, so that a DDP wrapper (which calls forward) can train it."""
        return self.decode(z)


class KLAutoencoder(nn.Module):
    """A diffusers `AutoencoderKL` (e.g. Stable Diffusion's VAE), frozen, with its config's latent scaling.

    encode returns (posterior mode - shift_factor) * scaling_factor; decode undoes it before the decoder.
    """

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        config = vae.config
        self.factor = 2 ** (len(config.block_out_channels) - 1)
        self.channels = int(config.latent_channels)
        self.scaling_factor = float(config.scaling_factor)
        self.shift_factor = float(getattr(config, "shift_factor", None) or 0.0)

    @classmethod
    def from_folder(cls, path: str | Path) -> KLAutoencoder:
        """Load a diffusers folder (config.json + weights); S3 folders are materialized locally by the caller."""
        from diffusers import AutoencoderKL  # heavy import, only when a KL autoencoder is used

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"KLAutoencoder: {path} is not a diffusers AutoencoderKL folder (no config.json)")
        return cls(AutoencoderKL.from_pretrained(path))

    def save(self, path: str | Path) -> None:
        self.vae.save_pretrained(path)

    def train(self, mode: bool = True) -> KLAutoencoder:
        return super().train(False)  # always frozen: no dropout / norm-statistics changes from a parent's .train()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _check_divisible(x, self.factor, "KLAutoencoder")
        mode = self.vae.encode(x).latent_dist.mode()
        return (mode - self.shift_factor) * self.scaling_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4 or z.shape[1] != self.channels:
            raise ValueError(f"KLAutoencoder.decode: expected (B, {self.channels}, h, w), got {tuple(z.shape)}")
        return self.vae.decode(z / self.scaling_factor + self.shift_factor).sample


def vq_config(p: VQParams) -> dict:
    return {"embed_dim": p.embed_dim, "n_embed": p.n_embed, "ch": p.ch, "ch_mult": tuple(p.ch_mult),
            "num_res_blocks": p.num_res_blocks, "z_channels": p.embed_dim}


def build_autoencoder(p: AutoencoderParams, cache_dir: Path, scale: int) -> nn.Module:
    """The frozen first stage `p` names; `checkpoint` (path or s3://) holds official weights for vq_f4 (without one:
    random weights, for tests) and a diffusers folder for kl."""
    match p.kind:
        case "pixel_unshuffle":
            ae: nn.Module = PixelUnshuffle(factor=scale)
        case "vq_f4":
            ae = import_vq_f4(materialize(p.checkpoint, cache_dir), **vq_config(p.vq)) if p.checkpoint \
                else VQF4(**vq_config(p.vq))
        case "kl":
            if not p.checkpoint:
                raise ValueError("teacher.autoencoder.checkpoint: the 'kl' autoencoder needs a diffusers folder")
            ae = KLAutoencoder.from_folder(materialize(p.checkpoint, cache_dir))
    return ae.eval().requires_grad_(False)


def save_autoencoder(ae: nn.Module, folder: Path) -> None:
    """Write `ae`'s weights into a model folder being built (nothing for pixel_unshuffle)."""
    if isinstance(ae, KLAutoencoder):
        ae.save(folder / KL_DIR)
    elif isinstance(ae, PixelUnshuffleRefine):
        save_file({k: v.contiguous() for k, v in ae.state_dict().items()}, str(folder / DECODER_FILE))
    elif isinstance(ae, VQF4):
        save_file({k: v.contiguous() for k, v in ae.state_dict().items()}, str(folder / VQ_FILE))


def load_autoencoder(kind: ModelAutoencoderKind, folder: Path, scale: int, vq: VQParams | None = None) -> nn.Module:
    """The autoencoder `save_autoencoder` wrote into `folder` (`vq`: the VQ-f4 architecture, for kind vq_f4)."""
    match kind:
        case "pixel_unshuffle":
            ae: nn.Module = PixelUnshuffle(factor=scale)
        case "pixel_unshuffle_refine":
            weights = load_file(str(folder / DECODER_FILE))
            ae = PixelUnshuffleRefine(factor=scale, phase=weights["refine.0.weight"].shape[1] != 3)
            ae.load_state_dict(weights)
        case "vq_f4":
            ae = VQF4(**vq_config(vq or VQParams()))
            ae.load_state_dict(load_file(str(folder / VQ_FILE)))
        case "kl":
            ae = KLAutoencoder.from_folder(folder / KL_DIR)
    return ae.eval().requires_grad_(False)
