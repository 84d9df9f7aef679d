"""ResShift diffusion math (docs/methods.md §1.2-1.3, §1.7, §2.1), parameter-free and separate from any network.

The forward process shifts the residual y - x0 into the state while adding noise:
    q(x_t | x0, y) = N(x0 + eta_t (y - x0), kappa^2 eta_t I),   t = 0..T-1 (code index; index 0 is the paper's t=1).
Every denoiser here is an x0-predictor `model_fn(x_scaled, t, lq) -> x0_hat`; the samplers scale the input
themselves (`scale_input`) and never clip, because the state lives in latent space.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sr.config import DiffusionParams

ModelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def eta_schedule(steps: int, kappa: float, power: float, min_noise_level: float, etas_end: float) -> torch.Tensor:
    """ResShift's exponential schedule; returns eta_t (float64, shape (steps,)). `etas_end` is sqrt(eta_T)."""
    if steps < 2:
        raise ValueError(f"eta_schedule: steps must be >= 2, got {steps}")
    sqrt_eta_1 = min(min_noise_level / kappa, min_noise_level)
    if not 0 < sqrt_eta_1 < etas_end:
        raise ValueError(f"eta_schedule: need 0 < sqrt(eta_1)={sqrt_eta_1} < etas_end={etas_end}")
    b0 = math.exp(math.log(etas_end / sqrt_eta_1) / (steps - 1))
    beta = torch.linspace(0, 1, steps, dtype=torch.float64) ** power * (steps - 1)
    sqrt_etas = sqrt_eta_1 * b0**beta
    return sqrt_etas**2


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] as a (B,1,1,...) tensor broadcastable against `like`, in its dtype and device."""
    picked = values[t.detach().cpu().long()]
    return picked.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


@dataclass(frozen=True, eq=False)
class ResShift:
    """The schedule (float64 etas) plus kappa; every method takes batched float tensors and a LongTensor t of shape (B,)."""

    etas: torch.Tensor
    kappa: float
    # after `respaced`: index i of this schedule is index timestep_map[i] of the one the network was trained on
    timestep_map: torch.Tensor | None = None

    @classmethod
    def from_params(cls, p: DiffusionParams) -> ResShift:
        return cls(eta_schedule(p.steps, p.kappa, p.power, p.min_noise_level, p.etas_end), p.kappa)

    def respaced(self, steps: int) -> ResShift:
        """The same process visited at `steps` evenly spaced indices of this schedule, always ending at T-1 and (for
        steps >= 2) starting at 0; the network still receives the original indices (`network_t`). Only the
        deterministic sampler is meant to run on it; respaced(1) is one x0 prediction from x_T."""
        if not 1 <= steps <= self.steps:
            raise ValueError(f"respaced: steps must be in 1..{self.steps}, got {steps}")
        if steps == 1:
            keep = torch.tensor([self.steps - 1])
        else:
            keep = torch.linspace(0, self.steps - 1, steps, dtype=torch.float64).round().long()
        original = keep if self.timestep_map is None else self.timestep_map[keep]
        return ResShift(self.etas[keep].clone(), self.kappa, original)

    def network_t(self, t: torch.Tensor) -> torch.Tensor:
        """The index the network was trained with for index t of this (possibly respaced) schedule."""
        return t if self.timestep_map is None else self.timestep_map.to(t.device)[t]

    @property
    def steps(self) -> int:
        return int(self.etas.shape[0])

    @property
    def etas_prev(self) -> torch.Tensor:
        """eta_{t-1}, with eta before the first step := 0."""
        return torch.cat([self.etas.new_zeros(1), self.etas[:-1]])

    # ------------------------------------------------------------------------------------------ forward process

    def q_sample(self, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = x0 + eta_t (y - x0) + kappa sqrt(eta_t) noise."""
        eta = _at(self.etas, t, x0)
        return x0 + eta * (y - x0) + self.kappa * eta.sqrt() * noise

    def prior_sample(self, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Start of sampling, x_T = y + kappa sqrt(eta_T) noise (drops the small (1 - eta_T) x0 term, as ResShift)."""
        return y + self.kappa * math.sqrt(float(self.etas[-1])) * noise

    def scale_input(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Network input normalization x / sqrt(kappa^2 eta_t + 1): unit-ish variance at every t."""
        return x / (self.kappa**2 * _at(self.etas, t, x) + 1).sqrt()

    # ------------------------------------------------------------------------------------------ reverse process

    def posterior_mean_variance(
        self, xt: torch.Tensor, x0: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q(x_{t-1} | x_t, x0): (mean, variance, clipped log-variance), the last two shaped (B,1,1,1).

        At t=0 the variance is 0; its log is replaced by index 1's (ResShift's log(0) guard), and callers mask
        the noise at t=0 so the clipped value is never used there.
        """
        eta, eta_prev = self.etas, self.etas_prev
        alpha = eta - eta_prev
        variance = self.kappa**2 * eta_prev / eta * alpha
        log_variance = torch.log(torch.cat([variance[1:2], variance[1:]]))
        mean = _at(eta_prev / eta, t, xt) * xt + _at(alpha / eta, t, xt) * x0
        return mean, _at(variance, t, xt), _at(log_variance, t, xt)

    def ancestral_step(
        self, x0_hat: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """x_{t-1} = posterior mean + sigma_t z, with z = 0 where t == 0."""
        mean, _, log_variance = self.posterior_mean_variance(xt, x0_hat, t)
        z = torch.randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
        nonzero = (t != 0).to(xt.dtype).reshape(-1, *([1] * (xt.dim() - 1)))
        return mean + nonzero * torch.exp(0.5 * log_variance) * z

    def ddim_coefficients(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SinSR's deterministic step x_{t-1} = k x0_hat + m x_t + j y (float64 (T,) each; k + m + j = 1)."""
        eta, eta_prev = self.etas, self.etas_prev
        m = torch.sqrt(eta_prev / eta)
        k = 1 - eta_prev + torch.sqrt(eta_prev * eta) - m
        j = eta_prev - torch.sqrt(eta_prev * eta)
        return k, m, j

    def ddim_step(self, x0_hat: torch.Tensor, xt: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Re-noise x0_hat to t-1 with the noise implied by x_t (no fresh randomness)."""
        k, m, j = self.ddim_coefficients()
        return _at(k, t, xt) * x0_hat + _at(m, t, xt) * xt + _at(j, t, xt) * y

    def sample(
        self,
        model_fn: ModelFn,
        y: torch.Tensor,
        lq: torch.Tensor,
        noise: torch.Tensor,
        deterministic: bool,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Run all T steps from x_T = prior_sample(y, noise); return the final x0 latent. The ancestral sampler
        (deterministic=False) needs `generator`."""
        if not deterministic and generator is None:
            raise ValueError("ResShift.sample: the ancestral sampler (deterministic=False) needs a torch.Generator")
        xt = self.prior_sample(y, noise)
        for index in reversed(range(self.steps)):
            t = torch.full((xt.shape[0],), index, dtype=torch.long, device=xt.device)
            x0_hat = model_fn(self.scale_input(xt, t), self.network_t(t), lq)
            if deterministic:
                xt = self.ddim_step(x0_hat, xt, y, t)
            else:
                assert generator is not None
                xt = self.ancestral_step(x0_hat, xt, t, generator)
        return xt

    def training_loss(
        self,
        model_fn: ModelFn,
        x0: torch.Tensor,
        y: torch.Tensor,
        lq: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """The teacher's x0 MSE, per sample (B,): mean over C,H,W of (model(scaled x_t) - x0)^2."""
        xt = self.q_sample(x0, y, t, noise)
        x0_hat = model_fn(self.scale_input(xt, t), t, lq)
        return (x0_hat - x0).pow(2).flatten(1).mean(dim=1)
