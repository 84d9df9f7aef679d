"""ResShift's first stage: the LDM VQ-f4 autoencoder (`VQModelTorch`, docs/methods.md §1.1), state-dict compatible.

`encode` returns the continuous pre-quantization latent (quant_conv(encoder(x))); the diffusion lives there.
`decode` snaps each latent vector to its nearest codebook entry (straight-through, so gradients reach z), then runs
post_quant_conv and the decoder. Module names match `autoencoder_vq_f4.pth`, which `sr.models.official` loads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = _norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = _norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        if in_ch != out_ch:
            self.nin_shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions (only in the middle blocks)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        # contiguous: on CPU, SDPA's fused kernel needs unit stride on the channel axis, else it falls back to the
        # math path, which materialises the whole (hw)² matrix (4x slower on a 128² latent)
        q, k, v = (conv(y).view(b, 1, c, h * w).transpose(2, 3).contiguous() for conv in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # b, 1, hw, c
        return x + self.proj_out(out.transpose(2, 3).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # LDM pads right/bottom only


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Middle(nn.Module):
    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """One resolution: `block` ResnetBlocks, then an optional `downsample` / `upsample` (official key names)."""

    def __init__(self, blocks: list[ResnetBlock], resample: nn.Module | None, name: str) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.resample_name = name if resample is not None else None
        if resample is not None:
            self.add_module(name, resample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        return x if self.resample_name is None else getattr(self, self.resample_name)(x)


class Encoder(nn.Module):
    def __init__(self, in_ch: int, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, z_ch: int, dropout: float):
        super().__init__()
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in = ch
        for level, mult in enumerate(ch_mult):
            blocks = []
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(block_in, ch * mult, dropout))
                block_in = ch * mult
            last = level == len(ch_mult) - 1
            self.down.append(Level(blocks, None if last else Downsample(block_in), "downsample"))
        self.mid = Middle(block_in, dropout)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, z_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    def __init__(self, out_ch: int, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, z_ch: int, dropout: float):
        super().__init__()
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_ch, block_in, 3, padding=1)
        self.mid = Middle(block_in, dropout)
        levels: list[Level] = []
        for level in reversed(range(len(ch_mult))):  # built deepest first, stored shallowest first (official order)
            blocks = []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(block_in, ch * ch_mult[level], dropout))
                block_in = ch * ch_mult[level]
            levels.insert(0, Level(blocks, Upsample(block_in) if level > 0 else None, "upsample"))
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Codebook(nn.Module):
    def __init__(self, n_embed: int, embed_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def forward(self, z: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
        """Nearest entry per latent vector, straight-through. Chunked: a 512² latent x 8192 codes is 8 GiB at once.
        An exported graph (sr-export) takes all vectors in one piece: a traced Python loop would keep the trace
        size's number of chunks, and the graph would fail at every other size."""
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        codes = self.embedding.weight
        parts = [flat] if torch.compiler.is_exporting() else flat.split(chunk)
        # |z|² + |e|² - 2 z·e, the same expression as the reference, so near-ties resolve to the same code
        index = torch.cat(
            [((part**2).sum(1, keepdim=True) + (codes**2).sum(1) - 2 * part @ codes.t()).argmin(1) for part in parts]
        )
        zq = codes[index].view(b, h, w, c).permute(0, 3, 1, 2).to(z.dtype)
        return z + (zq - z).detach()


class VQF4(nn.Module):
    """VQ-f4: (B, 3, H, W) in [-1, 1] <-> (B, embed_dim, H/4, W/4). Defaults are ResShift's released config."""

    def __init__(
        self,
        embed_dim: int = 3,
        n_embed: int = 8192,
        ch: int = 128,
        ch_mult: tuple[int, ...] = (1, 2, 4),
        num_res_blocks: int = 2,
        z_channels: int = 3,
        in_channels: int = 3,
        out_channels: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.factor = 2 ** (len(ch_mult) - 1)
        self.channels = embed_dim
        self.encoder = Encoder(in_channels, ch, tuple(ch_mult), num_res_blocks, z_channels, dropout)
        self.decoder = Decoder(out_channels, ch, tuple(ch_mult), num_res_blocks, z_channels, dropout)
        self.quantize = Codebook(n_embed, embed_dim)
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % self.factor or x.shape[-1] % self.factor:
            raise ValueError(f"VQF4.encode: expected (B, 3, H, W), H and W multiples of {self.factor}, got {x.shape}")
        return self.quant_conv(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4 or z.shape[1] != self.channels:
            raise ValueError(f"VQF4.decode: expected (B, {self.channels}, h, w), got {tuple(z.shape)}")
        return self.decoder(self.post_quant_conv(self.quantize(z)))
