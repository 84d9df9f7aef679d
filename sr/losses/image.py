"""Image-space terms on a decoded one-step output against the HQ crop (docs/methods.md §2.4): what lets a student beat
its teacher's samples, and what trains its own decoder."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sr.config import ImageLossParams
from sr.losses.perceptual import LPIPSLoss

TERMS = (("img_l1", "lambda_l1"), ("img_grad", "lambda_grad"), ("img_grid", "lambda_grid"),
         ("img_lpips", "lambda_lpips"))


def border_ratio(x: torch.Tensor, period: int) -> torch.Tensor:
    """Mean |first difference| across the borders of `period`-px cells over the mean elsewhere, per image: ~1 for a
    photo, more where a latent grid shows (the differentiable twin of sr.eval.metrics.grid_energy, on RGB)."""
    dh, dv = x.diff(dim=-1).abs(), x.diff(dim=-2).abs()
    on_h = torch.arange(dh.shape[-1], device=x.device) % period == period - 1
    on_v = torch.arange(dv.shape[-2], device=x.device) % period == period - 1
    at = dh[..., on_h].mean(dim=(1, 2, 3)) + dv[..., on_v, :].mean(dim=(1, 2, 3))
    rest = dh[..., ~on_h].mean(dim=(1, 2, 3)) + dv[..., ~on_v, :].mean(dim=(1, 2, 3))
    return at / (rest + 1e-6)


class ImageLoss(nn.Module):
    """forward(image, hq) -> (unweighted terms, weighted sum) of the terms whose weight is not 0: L1; L1 of the first
    differences (edges, and the cell-border steps a latent grid leaves); the excess of the output's cell-border ratio
    over the HQ's (the grid alone: texture inside the cells is not pulled towards the mean); LPIPS. `period`: the
    latent cell size in pixels. LPIPS weights come from `torch_home`, loaded only when its weight is not 0."""

    def __init__(self, p: ImageLossParams, period: int, torch_home: Path | None) -> None:
        super().__init__()
        self.p, self.period = p, period
        self.names = [name for name, weight in TERMS if getattr(p, weight)]
        if p.lambda_lpips and torch_home is None:
            raise ValueError("distill.image.lambda_lpips > 0 needs the LPIPS weights (torch_home)")
        self.lpips = LPIPSLoss(torch_home, p.lpips_net) if p.lambda_lpips else None

    def forward(self, image: torch.Tensor, hq: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        p, losses = self.p, {}
        if p.lambda_l1:
            losses["img_l1"] = (image - hq).abs().mean()
        if p.lambda_grad:
            dx = (image.diff(dim=-1) - hq.diff(dim=-1)).abs().mean()
            dy = (image.diff(dim=-2) - hq.diff(dim=-2)).abs().mean()
            losses["img_grad"] = dx + dy
        if p.lambda_grid:
            excess = border_ratio(image, self.period) - border_ratio(hq, self.period)
            losses["img_grid"] = excess.clamp_min(0).mean()
        if self.lpips is not None:
            losses["img_lpips"] = self.lpips(image, hq)
        total = image.new_zeros(())
        for name, weight in TERMS:
            if name in losses:
                total = total + getattr(p, weight) * losses[name]
        return losses, total
