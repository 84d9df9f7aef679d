"""Stable Diffusion's DDPM math (docs/methods.md §4.2-4.3), parameter-free and separate from any network.

Variance-preserving forward process with the "scaled linear" beta schedule of SD-1.x/2.x:
    z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps,   t = 0..999.
Every denoiser here is an eps-predictor (SD-2.1-base's `prediction_type="epsilon"`). OSEDiff's one step treats the
encoded LQ latent as if it were z_999 (no noise is added) and reads off the x0 prediction.
"""

from __future__ import annotations

import torch

NUM_TIMESTEPS = 1000
ONE_STEP_T = 999  # OSEDiff's fixed timestep


def scaled_linear_alphas_cumprod(
    beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = NUM_TIMESTEPS
) -> torch.Tensor:
    """abar_t of SD, betas = linspace(sqrt(beta_start), sqrt(beta_end), steps)^2; float64, shape (steps,)."""
    if not 0 < beta_start < beta_end < 1:
        raise ValueError(f"scaled_linear_alphas_cumprod: need 0 < beta_start={beta_start} < beta_end={beta_end} < 1")
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] as a (B,1,1,...) tensor in `like`'s dtype and device; coefficients are taken in float64 first."""
    picked = values.detach().to(device="cpu", dtype=torch.float64)[t.detach().cpu().long()]
    return picked.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Sample q(z_t | z_0): sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, with t a LongTensor of shape (B,)."""
    abar = _at(alphas_cumprod, t, x0)
    return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise


def x0_from_eps(xt: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Invert the forward process given a noise prediction: (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    abar = _at(alphas_cumprod, t, xt)
    return (xt - (1.0 - abar).sqrt() * eps) / abar.sqrt()


def one_step_x0(z: torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """OSEDiff's one step: z_hat = (z - sqrt(1 - abar_999) eps) / sqrt(abar_999) (≈ 14.649 z - 14.615 eps for SD)."""
    t = torch.full((z.shape[0],), ONE_STEP_T, dtype=torch.long)
    return x0_from_eps(z, eps, t, alphas_cumprod)
