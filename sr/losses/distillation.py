"""SinSR's one-step distillation losses (docs/methods.md §2.2), as pure functions of a denoiser.

A denoiser is `model(x_scaled, t, lq) -> x0_hat`. The one-step student always runs at the last index T-1 from
x_T = y + κ√η_T·ε. Every loss returns one value per sample (mean over C,H,W), so callers choose the reduction.
"""

from __future__ import annotations

import torch

from sr.diffusion.resshift import ModelFn, ResShift


def _steps(index: int, like: torch.Tensor) -> torch.Tensor:
    return torch.full((like.shape[0],), index, dtype=torch.long, device=like.device)


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error, (B,)."""
    return (prediction - target).pow(2).flatten(1).mean(dim=1)


def one_step(model: ModelFn, diffusion: ResShift, x_T: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """The student's x0 estimate from the start state: model(x_T / s_T, T-1, lq)."""
    t = _steps(diffusion.steps - 1, x_T)
    return model(diffusion.scale_input(x_T, t), t, lq)


def invert(model: ModelFn, diffusion: ResShift, x0: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """The same network at index 0 maps a clean latent back to its start state x_T.

    Its input is divided by s_T (not s_0) like SinSR: index 0 only tells the network which direction to run, and
    a clean latent is as large as x_T / s_T, not as x_0 / s_0.
    """
    t_last = _steps(diffusion.steps - 1, x0)
    return model(diffusion.scale_input(x0, t_last), _steps(0, x0), lq)


def distill_loss(student_x0: torch.Tensor, teacher_x0: torch.Tensor) -> torch.Tensor:
    """L_distill = ‖f_θ(x_T) − x̂0_teacher‖², the teacher's T-step deterministic output from the same x_T."""
    return mse(student_x0, teacher_x0.detach())


def inverse_loss(
    model: ModelFn, diffusion: ResShift, teacher_x0: torch.Tensor, x_T: torch.Tensor, lq: torch.Tensor
) -> torch.Tensor:
    """L_inverse = ‖f_θ(x̂0_teacher / s_T, 0) − x_T‖²: learn the deterministic map's inverse (SinSR `learn_xT`)."""
    return mse(invert(model, diffusion, teacher_x0.detach(), lq), x_T)


def gt_loss(model: ModelFn, diffusion: ResShift, z_hq: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """L_gt = ‖f_θ(sg[f_θ(z_hq / s_T, 0)], T-1) − z_hq‖²: the HQ latent survives a round trip through x_T."""
    with torch.no_grad():
        x_T = invert(model, diffusion, z_hq, lq)
    return mse(one_step(model, diffusion, x_T, lq), z_hq)
