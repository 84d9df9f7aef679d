"""ResShift's denoiser `UNetModelSwin` (docs/methods.md §1.4), written so its state_dict matches the released weights.

A guided-diffusion UNet with FiLM time conditioning (`use_scale_shift_norm`) and a Swin `BasicLayer` after the first
ResBlock of every level listed in `attention_resolutions`, plus ResBlock-Swin-ResBlock in the middle. The LQ image
(at latent resolution) is concatenated channel-wise to the noisy latent; the timestep is the raw integer index.

Module names (`input_blocks.<i>.<j>`, `in_layers.2`, `patch_embed.proj`, ...) are the official ones on purpose:
`sr.models.official` loads `resshift_realsrx4_*.pth` straight into this class. The Swin constants
(`relative_position_index`, `attn_mask`) are derived, so they are non-persistent buffers here: our safetensors hold
only learned weights, and the importer drops those entries from official files.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sr.config import SwinUNetParams
from sr.models.embeddings import timestep_embedding


class GroupNorm32(nn.GroupNorm):
    """GroupNorm(32) computed in float32 (fp16 statistics overflow), cast back to the input dtype."""

    def __init__(self, channels: int) -> None:
        super().__init__(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


# ---------------------------------------------------------------------------------------------------- UNet parts


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(GroupNorm32(in_ch), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out_ch))
        self.out_layers = nn.Sequential(
            GroupNorm32(out_ch), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        )
        nn.init.zeros_(self.out_layers[3].weight)  # each block starts as the identity
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        scale, shift = self.emb_layers(emb).type(h.dtype)[:, :, None, None].chunk(2, dim=1)
        norm, rest = self.out_layers[0], self.out_layers[1:]
        h = rest(norm(h) * (1 + scale) + shift)
        return self.skip_connection(x) + h


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TimestepSequential(nn.Sequential):
    """Layers run in order; ResBlocks also get the time embedding. (Sequential keeps the official `<i>.<j>` keys.)"""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


# ---------------------------------------------------------------------------------------------------- Swin parts


def relative_position_index(window: int) -> torch.Tensor:
    """(N, N), N = window^2: index into the (2w-1)^2 bias table for each (query, key) token pair in a window."""
    ij = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)  # 2, N
    delta = ij[:, :, None] - ij[:, None, :] + (window - 1)  # 2, N, N, each in 0..2w-2
    return delta[0] * (2 * window - 1) + delta[1]


def shift_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """(num_windows, N, N) additive mask (0 or -100) for shifted-window attention, exactly as ResShift builds it.

    ResShift's `calculate_mask` indexes its (1, 1, H, W) label image as if it were (1, H, W, 1): the three shifted
    strips are labelled along H only, and the labels are then read transposed inside each window, so token (i, j) of
    window (row r, col c) gets the label of image row r * window + j. The released weights were trained with this
    mask, so it is reproduced here rather than the textbook Swin mask.
    """
    rows = torch.arange(height)
    row_label = (rows >= height - window).long() + (rows >= height - shift).long()
    n_rows, n_cols = height // window, width // window
    label = row_label.view(n_rows, 1, 1, window).expand(n_rows, n_cols, window, window).reshape(-1, window * window)
    different = label[:, :, None] != label[:, None, :]
    return different.float() * -100.0


def to_windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, num_windows, window^2, C), windows row-major, tokens row-major inside each window."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // window, window, w // window, window).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // window) * (w // window), window * window, c)


def from_windows(x: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    b, _, _, c = x.shape
    x = x.view(b, h // window, w // window, window, window, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, h, w)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B, num_windows, N, C); mask: (num_windows, N, N) or None."""
        b, nw, n, c = x.shape
        qkv = self.qkv(x).view(b, nw, n, 3, self.heads, c // self.heads).permute(3, 0, 1, 4, 2, 5)
        # windows x heads share one axis so the attention is 4-D with a mask that broadcasts over the batch
        # (fused GPU kernels need both)
        q, k, v = qkv.reshape(3, b, nw * self.heads, n, c // self.heads)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, self.heads)
        bias = bias.permute(2, 0, 1).expand(nw, self.heads, n, n)
        if mask is not None:
            bias = bias + mask[:, None]
        bias = bias.reshape(1, nw * self.heads, n, n).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # b, nw * heads, N, d
        out = out.view(b, nw, self.heads, n, c // self.heads).transpose(2, 3).reshape(b, nw, n, c)
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class SwinBlock(nn.Module):
    """(Shifted-)window attention + MLP on a (B, C, H, W) map, GroupNorm instead of LayerNorm (as ResShift)."""

    def __init__(self, dim: int, grid: int, heads: int, window: int, shift: int, mlp_ratio: float, dropout: float):
        super().__init__()
        if grid <= window:  # one window covers the whole grid: nothing to shift
            window, shift = grid, 0
        self.grid, self.window, self.shift = grid, window, shift
        self.norm1 = GroupNorm32(dim)
        self.attn = WindowAttention(dim, window, heads, dropout)
        self.norm2 = GroupNorm32(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)
        mask = shift_mask(grid, grid, window, shift) if shift else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        if h % self.window or w % self.window:
            raise ValueError(f"SwinBlock: feature map {h}x{w} is not a multiple of window {self.window}")
        y = self.norm1(x)
        mask = None
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(2, 3))
            same = (h, w) == (self.grid, self.grid)
            mask = self.attn_mask if same else shift_mask(h, w, self.window, self.shift).to(x.device)
        y = from_windows(self.attn(to_windows(y, self.window), mask), self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(2, 3))
        x = x + y
        return x + self.mlp(self.norm2(x))


class Projection(nn.Module):
    """A 1x1 conv under the official name `proj` (patch_size=1 patch embedding / unembedding, no norm)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class SwinLayer(nn.Module):
    """ResShift's `BasicLayer`: 1x1 in to embed_dim, `depth` Swin blocks (every 2nd shifted), 1x1 out. No outer skip."""

    def __init__(self, channels: int, grid: int, p: SwinUNetParams) -> None:
        super().__init__()
        heads = p.swin_embed_dim // p.num_head_channels
        self.patch_embed = Projection(channels, p.swin_embed_dim)
        self.blocks = nn.ModuleList(
            SwinBlock(
                p.swin_embed_dim, grid, heads, p.window_size, (i % 2) * (p.window_size // 2), p.mlp_ratio, p.dropout
            )
            for i in range(p.swin_depth)
        )
        self.patch_unembed = Projection(p.swin_embed_dim, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for block in self.blocks:
            x = block(x)
        return self.patch_unembed(x)


# ---------------------------------------------------------------------------------------------------- the network


class ResShiftSwinUNet(nn.Module):
    """forward(x, t, lq) -> x0_hat. x: scaled noisy latent (B, C, h, w); t: integer step (B,); lq: (B, 3, h, w)."""

    def __init__(self, p: SwinUNetParams, latent_channels: int = 3, lq_channels: int = 3) -> None:
        super().__init__()
        self.p = p
        mc, levels = p.model_channels, len(p.channel_mult)
        emb_dim = 4 * mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        ch = mc * p.channel_mult[0]
        conv_in = nn.Conv2d(latent_channels + lq_channels, ch, 3, padding=1)
        self.input_blocks = nn.ModuleList([TimestepSequential(conv_in)])
        skip_channels, grid = [ch], p.image_size
        self.level_ends: list[int] = []  # index in input_blocks of each level's last block (TAD-SR's features)
        for level, mult in enumerate(p.channel_mult):
            for i in range(p.num_res_blocks[level]):
                layers: list[nn.Module] = [ResBlock(ch, mc * mult, emb_dim, p.dropout)]
                ch = mc * mult
                if grid in p.attention_resolutions and i == 0:
                    layers.append(SwinLayer(ch, grid, p))
                self.input_blocks.append(TimestepSequential(*layers))
                skip_channels.append(ch)
            if level != levels - 1:
                self.input_blocks.append(TimestepSequential(Downsample(ch)))
                skip_channels.append(ch)
                grid //= 2
            self.level_ends.append(len(self.input_blocks) - 1)

        self.middle_block = TimestepSequential(
            ResBlock(ch, ch, emb_dim, p.dropout), SwinLayer(ch, grid, p), ResBlock(ch, ch, emb_dim, p.dropout)
        )

        self.output_blocks = nn.ModuleList()
        for level in reversed(range(levels)):
            mult = p.channel_mult[level]
            for i in range(p.num_res_blocks[level] + 1):
                layers = [ResBlock(ch + skip_channels.pop(), mc * mult, emb_dim, p.dropout)]
                ch = mc * mult
                if grid in p.attention_resolutions and i == 0:
                    layers.append(SwinLayer(ch, grid, p))
                if level > 0 and i == p.num_res_blocks[level]:
                    layers.append(Upsample(ch))
                    grid *= 2
                self.output_blocks.append(TimestepSequential(*layers))

        self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(), nn.Conv2d(ch, latent_channels, 3, padding=1))
        # the input must survive every halving and still be tiled by the windows of the smallest grid
        self.size_multiple = math.lcm(*(2**lv * min(p.window_size, p.image_size // 2**lv) for lv in range(levels)))

    def _encode(self, x: torch.Tensor, t: torch.Tensor, lq: torch.Tensor):
        if x.shape[-2:] != lq.shape[-2:]:
            raise ValueError(f"ResShiftSwinUNet: latent {tuple(x.shape)} and lq {tuple(lq.shape)} differ in size")
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"ResShiftSwinUNet: input size {h}x{w} is not a multiple of {self.size_multiple}")
        emb = self.time_embed(timestep_embedding(t, self.p.model_channels))
        hs = []
        h = torch.cat([x, lq.to(x.dtype)], dim=1)
        for block in self.input_blocks:
            h = block(h, emb)
            hs.append(h)
        return hs, self.middle_block(h, emb), emb

    def forward(self, x: torch.Tensor, t: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        hs, h, emb = self._encode(x, t, lq)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)

    def encoder_features(self, x: torch.Tensor, t: torch.Tensor, lq: torch.Tensor) -> list[torch.Tensor]:
        """Each level's last encoder map plus the middle block's output: TAD-SR's `only_fea` features (§3.4).

        At the official config these are hs[3], hs[6], hs[9], hs[11] and middle (160@32², 320@16², 320@8², 640@8²,
        640@8² for 64² latents).
        """
        hs, middle, _ = self._encode(x, t, lq)
        return [hs[i] for i in self.level_ends] + [middle]
