"""Discriminators of the adversarial one-step recipes, all ending in StyleGAN-T-style 1-D heads.

- `TimeAwareDiscriminator` (TAD-SR, docs/methods.md §3.4): trainable only on top of the frozen teacher encoder's
  features of a noisy latent at step t_d. Per level: FiLM by the sinusoidal t_d embedding, a zero-initialised 3x3
  conv, then a head over the flattened positions.
- `LatentDiscriminator` (Co-learning §5, used for both the HQ and the LQ discriminator): a small trained
  convolutional feature network on a latent, a head on every level.

Every forward returns a list of logits, one (B, c_dim · H_k · W_k) tensor per level.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from sr.models.embeddings import timestep_embedding


def _groups(channels: int, wanted: int) -> int:
    return math.gcd(wanted, channels)


def circular_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Wrap `pad` positions around each end of (B, C, L), even when L < pad (F.pad refuses; small latents hit it)."""
    length = x.shape[-1]
    reps = -(-pad // length)
    tiled = torch.cat([x] * (2 * reps + 1), dim=-1)
    begin = reps * length - pad
    return tiled[..., begin : begin + length + 2 * pad]


class _ConvNormAct1d(nn.Module):
    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = kernel_size // 2
        self.conv = spectral_norm(nn.Conv1d(channels, channels, kernel_size))
        self.norm = nn.GroupNorm(_groups(channels, 4), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(circular_pad(x, self.pad))), 0.2)


class DiscHead(nn.Module):
    """(B, C, H, W) features -> (B, c_dim · H · W) logits: 1-D convs over the flattened positions."""

    def __init__(self, channels: int, c_dim: int) -> None:
        super().__init__()
        self.stem = _ConvNormAct1d(channels, 1)
        self.residual = _ConvNormAct1d(channels, 9)
        self.out = spectral_norm(nn.Conv1d(channels, c_dim, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.stem(features.flatten(2))
        h = (h + self.residual(h)) / math.sqrt(2)
        return self.out(h).flatten(1)


class _TimeLevel(nn.Module):
    def __init__(self, channels: int, embed_dim: int, c_dim: int) -> None:
        super().__init__()
        self.film = nn.Linear(embed_dim, 2 * channels)
        self.norm = nn.GroupNorm(_groups(channels, 32), channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)  # starts as "no opinion"; the head learns from the FiLM'd features
        nn.init.zeros_(self.conv.bias)
        self.head = DiscHead(channels, c_dim)

    def forward(self, features: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm(features) * (1 + scale) + shift
        return self.head(self.conv(F.silu(h)))


class TimeAwareDiscriminator(nn.Module):
    """Heads on the teacher encoder's features; `channels` lists each level's width (probe them once, see
    `feature_channels`), `embed_dim` is the width of the sinusoidal t embedding (the teacher's model_channels)."""

    def __init__(self, channels: list[int], embed_dim: int, c_dim: int = 64) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.levels = nn.ModuleList(_TimeLevel(c, embed_dim, c_dim) for c in channels)

    def forward(self, features: list[torch.Tensor], t: torch.Tensor) -> list[torch.Tensor]:
        if len(features) != len(self.levels):
            raise ValueError(f"TimeAwareDiscriminator: got {len(features)} feature maps, built for {len(self.levels)}")
        emb = timestep_embedding(t, self.embed_dim).to(features[0].dtype)
        return [level(f, emb) for level, f in zip(self.levels, features)]


@torch.no_grad()
def feature_channels(encoder_features, latent: torch.Tensor, lq: torch.Tensor) -> list[int]:
    """Widths of every map `encoder_features(x, t, lq)` returns, from one probe call."""
    t = torch.zeros(latent.shape[0], dtype=torch.long, device=latent.device)
    return [f.shape[1] for f in encoder_features(latent, t, lq)]


class LatentDiscriminator(nn.Module):
    """A trained feature network on a latent (B, in_channels, h, w): conv stem, then `levels` stride-2 stages whose
    outputs each feed a head. Heads are spectrally normalised; the feature convs are plain, as in StyleGAN-T."""

    def __init__(self, in_channels: int, channels: int = 64, levels: int = 3, c_dim: int = 64) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.stages = nn.ModuleList()
        self.heads = nn.ModuleList()
        ch = channels
        for level in range(levels):
            out = channels * min(2**level, 4)
            stride = 1 if level == 0 else 2
            self.stages.append(nn.Sequential(
                nn.Conv2d(ch, out, 3, stride=stride, padding=1), nn.GroupNorm(_groups(out, 32), out),
                nn.LeakyReLU(0.2), nn.Conv2d(out, out, 3, padding=1), nn.LeakyReLU(0.2),
            ))  # fmt: skip
            self.heads.append(DiscHead(out, c_dim))
            ch = out

    def forward(self, latent: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(latent)
        logits = []
        for stage, head in zip(self.stages, self.heads):
            h = stage(h)
            logits.append(head(h))
        return logits
