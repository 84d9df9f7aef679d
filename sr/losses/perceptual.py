"""LPIPS as a training loss (ResShift v3: LPIPS-vgg; OSEDiff: 2 x LPIPS-vgg), from the offline-provisioned weights.

It is pyiqa's LPIPS network (the same one the evaluation scores with), called with images in
[-1,1] as the diffusion code holds them. Every parameter is frozen and the network stays in eval mode (its linear
layers sit behind Dropout) even when a parent module is put in train mode; gradients flow to the inputs only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn

from sr.pretrained import lpips_network


class LPIPSLoss(nn.Module):
    def __init__(self, torch_home: Path, net: Literal["vgg", "alex"] = "vgg") -> None:
        super().__init__()
        self.net = lpips_network(Path(torch_home), net).net  # the bare pyiqa LPIPS module, without the metric wrapper's no_grad and [0,1] checks
        self.net.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> LPIPSLoss:
        super().train(mode)
        self.net.eval()  # dropout in the linear layers must never be active
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean LPIPS over the batch; `x`, `y` are (B,3,H,W) in [-1,1]."""
        return self.net(x, y, normalize=False).mean()
