"""Exponential moving average of a model's weights (the weights every released model ships)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_copy(model: nn.Module) -> nn.Module:
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, rate: float) -> None:
    """ema <- rate·ema + (1−rate)·model for float tensors; integer buffers (e.g. index tables) are copied."""
    model_state = model.state_dict()
    for name, value in ema.state_dict().items():
        source = model_state[name]
        if value.dtype.is_floating_point:
            value.lerp_(source.to(value.dtype), 1.0 - rate)
        else:
            value.copy_(source)
