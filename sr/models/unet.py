"""The small teacher/student UNet of the embedded default: an x0-predictor with ResShift conditioning.

forward(x, t, lq): x is the already-scaled noisy latent (ResShift.scale_input), t the raw integer step index
(no x1000/T rescale, as ResShift), lq the low-quality image in [-1, 1] concatenated channel-wise to x. The
layout follows guided-diffusion: ResBlocks with GroupNorm and FiLM (scale-shift) time conditioning, optional
self-attention per level, skip connections from every encoder block to the decoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sr.config import UNetParams
from sr.models.embeddings import timestep_embedding


def group_norm(channels: int) -> nn.GroupNorm:
    # 32 groups like guided-diffusion, fewer when the width does not divide (tiny test configs).
    return nn.GroupNorm(math.gcd(32, channels), channels)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift  # use_scale_shift_norm: FiLM after the norm
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention, residual. Over all h*w positions when the grid fits one `window` (the training
    crops), else within window×window tiles of the grid, so its cost grows linearly with the image instead of
    quadratically: at inference on large images it stays local, like ResShift's Swin blocks. The tiles are not
    shifted: on a grid within one window, one zero-padded, masked tile is exactly global attention, so an exported
    graph (which always takes the tiled path) computes the same function at every size."""

    def __init__(self, channels: int, head_channels: int, window: int) -> None:
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.window = window
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x))
        if h <= self.window and w <= self.window:
            q, k, v = qkv.reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
            out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
            return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))
        return x + self.proj(self._windowed(qkv, h, w))

    def _windowed(self, qkv: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Attention inside each window of the grid padded (zeros, masked out as keys) to whole windows."""
        b, c3 = qkv.shape[:2]
        c, win, heads = c3 // 3, self.window, self.heads
        pad = (0, (win - w % win) % win, 0, (win - h % win) % win)
        qkv = F.pad(qkv, pad)
        nh, nw = qkv.shape[-2] // win, qkv.shape[-1] // win
        tiles = qkv.reshape(b, 3, heads, c // heads, nh, win, nw, win).permute(1, 0, 4, 6, 2, 5, 7, 3)
        q, k, v = tiles.reshape(3, b * nh * nw, heads, win * win, c // heads).unbind(0)
        valid = F.pad(qkv.new_ones(1, 1, h, w), pad).reshape(nh, win, nw, win).permute(0, 2, 1, 3)
        keys = valid.reshape(1, nh * nw, 1, 1, win * win).expand(b, -1, -1, -1, -1).reshape(b * nh * nw, 1, 1, -1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys > 0)
        out = out.reshape(b, nh, nw, heads, win, win, c // heads).permute(0, 3, 6, 1, 4, 2, 5)
        return out.reshape(b, c, nh * win, nw * win)[..., :h, :w]


class Level(nn.Module):
    """One resolution of the encoder or decoder: ResBlock (+ Attention) per block, then an optional resample."""

    def __init__(self, blocks: list[ResBlock], attention: list[nn.Module], resample: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attention = nn.ModuleList(attention)
        self.resample = resample


class UNet(nn.Module):
    def __init__(self, latent_channels: int, lq_channels: int, p: UNetParams) -> None:
        super().__init__()
        bad = [level for level in p.attention_levels if not 0 <= level < len(p.channel_mult)]
        if bad:
            raise ValueError(f"UNetParams.attention_levels {bad} out of range for channel_mult {p.channel_mult}")
        self.latent_channels, self.lq_channels, self.model_channels = latent_channels, lq_channels, p.model_channels
        self.size_multiple = 2 ** (len(p.channel_mult) - 1)  # latent sides the down/up-sampling accepts
        emb_dim = 4 * p.model_channels
        self.time_embed = nn.Sequential(nn.Linear(p.model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv2d(latent_channels + lq_channels, p.model_channels, 3, padding=1)

        def attention(level: int, channels: int) -> nn.Module:
            if level not in p.attention_levels:
                return nn.Identity()
            return Attention(channels, p.num_head_channels, p.attention_window)

        last = len(p.channel_mult) - 1
        ch = p.model_channels
        skips = [ch]  # widths of every tensor the encoder hands to the decoder
        self.down = nn.ModuleList()
        for level, mult in enumerate(p.channel_mult):
            out = mult * p.model_channels
            blocks, attn = [], []
            for _ in range(p.num_res_blocks):
                blocks.append(ResBlock(ch, out, emb_dim, p.dropout))
                attn.append(attention(level, out))
                ch = out
                skips.append(ch)
            downsample = nn.Conv2d(ch, ch, 3, stride=2, padding=1) if level < last else nn.Identity()
            if level < last:
                skips.append(ch)
            self.down.append(Level(blocks, attn, downsample))

        self.mid_block1 = ResBlock(ch, ch, emb_dim, p.dropout)
        self.mid_attention = Attention(ch, p.num_head_channels, p.attention_window)
        self.mid_block2 = ResBlock(ch, ch, emb_dim, p.dropout)

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(p.channel_mult))):
            out = mult * p.model_channels
            blocks, attn = [], []
            for _ in range(p.num_res_blocks + 1):
                blocks.append(ResBlock(ch + skips.pop(), out, emb_dim, p.dropout))
                attn.append(attention(level, out))
                ch = out
            upsample = nn.Conv2d(ch, ch, 3, padding=1) if level > 0 else nn.Identity()
            self.up.append(Level(blocks, attn, upsample))

        self.norm_out = group_norm(ch)
        self.conv_out = nn.Conv2d(ch, latent_channels, 3, padding=1)
        # A linear path from lq straight to x0 (bicubic upsampling followed by space-to-depth is itself a 5x5 conv of
        # lq). The trainer fits it by least squares before step 0 and the down-scaled output conv adds a small
        # learned residual, so the network starts near the best linear upscaler instead of from noise.
        self.lq_skip = nn.Conv2d(lq_channels, latent_channels, 5, padding=2)
        with torch.no_grad():
            self.conv_out.weight.mul_(0.1)
            self.conv_out.bias.zero_()

    @staticmethod
    def _lq_at(x: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        if lq.shape[-2:] != x.shape[-2:]:
            shrink = lq.shape[-2] >= x.shape[-2] and lq.shape[-1] >= x.shape[-1]
            lq = F.interpolate(lq, size=x.shape[-2:], mode="area" if shrink else "bicubic")
        return lq

    def _inputs(self, x: torch.Tensor, t: torch.Tensor, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lq = self._lq_at(x, lq)
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(x.dtype))
        return self.conv_in(torch.cat([x, lq], dim=1)), emb

    def _encode(self, h: torch.Tensor, emb: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Run the encoder; returns (skips for the decoder, the last output of every level)."""
        skips, levels = [h], []
        for level in self.down:
            for block, attn in zip(level.blocks, level.attention):
                h = attn(block(h, emb))
                skips.append(h)
            if not isinstance(level.resample, nn.Identity):
                h = level.resample(h)
                skips.append(h)
            levels.append(h)
        return skips, levels

    def _middle(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.mid_block2(self.mid_attention(self.mid_block1(h, emb)), emb)

    def forward(self, x: torch.Tensor, t: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        """x0_hat (B, latent_channels, h, w) from the scaled noisy latent x, step index t (B,), and lq."""
        if x.shape[-2] % self.size_multiple or x.shape[-1] % self.size_multiple:
            raise ValueError(f"UNet: latent size {tuple(x.shape[-2:])} not divisible by {self.size_multiple}")
        h, emb = self._inputs(x, t, lq)
        skips, levels = self._encode(h, emb)
        h = self._middle(levels[-1], emb)
        for level in self.up:
            for block, attn in zip(level.blocks, level.attention):
                h = attn(block(torch.cat([h, skips.pop()], dim=1), emb))
            if not isinstance(level.resample, nn.Identity):
                h = level.resample(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h))) + self.lq_skip(self._lq_at(x, lq))

    def encoder_features(self, x: torch.Tensor, t: torch.Tensor, lq: torch.Tensor) -> list[torch.Tensor]:
        """The output of every encoder level (after its downsample, as TAD-SR's hs[3], hs[6], ...) plus the middle.

        Inputs as in forward; the time-aware discriminator feeds the frozen teacher noisy latents here.
        """
        h, emb = self._inputs(x, t, lq)
        _, levels = self._encode(h, emb)
        return levels + [self._middle(levels[-1], emb)]
