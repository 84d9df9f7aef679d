"""Co-learning's learnable downsampler G (docs/methods.md §5): HQ latent + noise -> an estimate of the LQ latent y.

`diffusion` is the paper's choice, a network of the student's structure fed concat(noise, HQ latent) (the HQ
latent takes the conditioning slot the LQ image has in the denoiser, so the same classes serve). `conv` is the
paper's cheaper ablation. Both output a latent of the input's shape; the LQ discriminator compares it with y.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from sr.config import DenoiserArch, SwinUNetParams, UNetParams
from sr.models.resshift_swin import ResShiftSwinUNet
from sr.models.unet import UNet

DownsamplerKind = Literal["diffusion", "conv"]


class ConvDownsampler(nn.Module):
    def __init__(self, latent_channels: int, channels: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2 * latent_channels, channels, 3, padding=1), nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU(),
            nn.Conv2d(channels, latent_channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, z_hq: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([noise, z_hq], dim=1))


class DiffusionDownsampler(nn.Module):
    """The student's architecture at a fixed step index 0, with the HQ latent as the conditioning input."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z_hq: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        t = torch.zeros(z_hq.shape[0], dtype=torch.long, device=z_hq.device)
        return self.net(noise, t, z_hq)


def build_downsampler(
    kind: DownsamplerKind, arch: DenoiserArch, unet: UNetParams | None, swin: SwinUNetParams | None,
    latent_channels: int,
) -> nn.Module:
    """`kind` conv, or diffusion: a network of the student's `arch` at its params (`unet` or `swin`)."""
    match kind, arch:
        case "conv", _:
            return ConvDownsampler(latent_channels)
        case "diffusion", "unet":
            assert unet is not None
            return DiffusionDownsampler(UNet(latent_channels, latent_channels, unet))
        case "diffusion", "resshift_swin":
            assert swin is not None
            return DiffusionDownsampler(ResShiftSwinUNet(swin, latent_channels, latent_channels))
    raise ValueError(f"downsampler: kind {kind!r} with arch {arch!r} is not supported")
