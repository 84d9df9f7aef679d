"""Colour correction of an SR output against its input, as StableSR ships it and OSEDiff applies at test time
(docs/methods.md §4.6). Both take the output and the bicubic-upsampled LQ, batches in [-1, 1] of the same size.

- adain: each channel of the output gets the mean and standard deviation of the same channel of the input;
- wavelet: the output's high-frequency bands (five levels of a dilated 3×3 blur) over the input's low-frequency
  residual, so colours and large-scale tones come from the input and detail from the output.
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F

from sr.config import ColorFix

COLOR_FIXES: tuple[ColorFix, ...] = get_args(ColorFix)
WAVELET_LEVELS = 5


def adain(output: torch.Tensor, source: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    dims = (-2, -1)
    out_mean, out_std = output.mean(dims, keepdim=True), output.std(dims, keepdim=True) + eps
    src_mean, src_std = source.mean(dims, keepdim=True), source.std(dims, keepdim=True) + eps
    return (output - out_mean) / out_std * src_std + src_mean


def _blur(x: torch.Tensor, dilation: int) -> torch.Tensor:
    kernel = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=x.dtype, device=x.device) / 16
    weight = kernel.expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (dilation,) * 4, mode="replicate"), weight, groups=x.shape[1], dilation=dilation)


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(high-frequency bands, low-frequency residual) of x."""
    high = torch.zeros_like(x)
    for level in range(WAVELET_LEVELS):
        low = _blur(x, 2**level)
        high, x = high + (x - low), low
    return high, x


def wavelet(output: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    return _split(output)[0] + _split(source)[1]


def color_fix(output: torch.Tensor, source: torch.Tensor, kind: ColorFix) -> torch.Tensor:
    """`output` corrected towards `source` by `kind`, clamped to [-1, 1]."""
    match kind:
        case "none":
            return output
        case "adain":
            return adain(output, source).clamp(-1, 1)
        case "wavelet":
            return wavelet(output, source).clamp(-1, 1)
    raise ValueError(f"color fix {kind!r} is not one of {', '.join(COLOR_FIXES)}")
