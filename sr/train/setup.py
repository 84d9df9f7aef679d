"""What every trainer sets up the same way: the accelerator (device, DDP, mixed precision) and the LR warmup."""

from __future__ import annotations

import torch
from accelerate import Accelerator

from sr.config import MixedPrecision


def make_accelerator(mixed_precision: MixedPrecision) -> Accelerator:
    """DDP when launched with `accelerate launch` on several GPUs; plain CPU here. fp16/bf16 only make sense on GPU."""
    on_gpu = torch.cuda.is_available()
    return Accelerator(mixed_precision=mixed_precision if on_gpu else "no", cpu=not on_gpu)


def warmup_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the base LR, then constant (ResShift/SinSR `milestones[0]`)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup_steps)))
