"""The sinusoidal timestep embedding every denoiser and the time-aware discriminator share (guided-diffusion's)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B, dim): [cos | sin] of t * max_period^(-k/half), k = 0..half-1, of the raw step index (no ×1000/T)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return F.pad(torch.cat([torch.cos(args), torch.sin(args)], dim=-1), (0, dim % 2))
