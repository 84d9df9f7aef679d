"""OSEDiff's losses (docs/methods.md §4.3) as pure functions of tensors and callables.

Score networks enter as `EpsFn(z_t, t, prompt_embeds) -> eps` so the caller decides dtype, autocast and whether
the net is the frozen SD UNet (real score) or the LoRA'd copy (fake score). Random draws come from a passed
torch.Generator, in a fixed order: timesteps first, then noise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sr.diffusion.sd import NUM_TIMESTEPS, add_noise, x0_from_eps
from sr.seeds import Draws

EpsFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
LpipsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _draw(z: torch.Tensor, t_min: int, t_max: int, generator: torch.Generator | Draws) -> tuple[torch.Tensor, torch.Tensor]:
    """t ~ U{t_min..t_max-1} per sample, then noise ~ N(0, I) shaped like z (a Draws: this process's rows)."""
    draws = generator if isinstance(generator, Draws) else Draws(generator)
    t = draws.randint(t_min, t_max, z.shape[0]).to(z.device)
    return t, draws.randn(z.shape).to(device=z.device, dtype=z.dtype)


def _batched(embeds: torch.Tensor, batch: int) -> torch.Tensor:
    return embeds.expand(batch, -1, -1) if embeds.shape[0] == 1 and batch > 1 else embeds


def dmd_loss(z_hat: torch.Tensor, x0_fake: torch.Tensor, x0_real: torch.Tensor) -> torch.Tensor:
    """Distribution-matching surrogate: MSE(z_hat, sg[z_hat - grad]), grad = (x0_fake - x0_real) / w with
    w = mean_{c,h,w} |z_hat - x0_real| per sample, so d loss / d z_hat = 2 grad / z_hat.numel()."""
    z = z_hat.float()
    with torch.no_grad():
        x0_fake, x0_real = x0_fake.float(), x0_real.float()
        weight = (z - x0_real).abs().mean(dim=tuple(range(1, z.dim())), keepdim=True)
        grad = torch.nan_to_num((x0_fake - x0_real) / weight)
        target = z - grad
    return F.mse_loss(z, target)


def vsd_loss(
    z_hat: torch.Tensor,
    real_eps_fn: EpsFn,
    fake_eps_fn: EpsFn,
    prompt_embeds: torch.Tensor,
    negative_embeds: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    generator: torch.Generator | Draws,
    cfg_scale: float = 7.5,
    t_min: int = 20,
    t_max: int = 980,
) -> torch.Tensor:
    """OSEDiff's latent VSD loss: noise z_hat to t ~ U[t_min, t_max), compare the fake score's x0 (positive prompt,
    no guidance) with the real score's x0 under classifier-free guidance against the negative prompt.
    Gradients reach z_hat only through the surrogate; both score nets run without grad."""
    batch = z_hat.shape[0]
    t, noise = _draw(z_hat, t_min, t_max, generator)
    with torch.no_grad():
        zt = add_noise(z_hat.detach(), noise, t, alphas_cumprod)
        pos, neg = _batched(prompt_embeds, batch), _batched(negative_embeds, batch)
        x0_fake = x0_from_eps(zt, fake_eps_fn(zt, t, pos).to(zt.dtype), t, alphas_cumprod)
        eps_pos = real_eps_fn(zt, t, pos).to(zt.dtype)
        eps_neg = real_eps_fn(zt, t, neg).to(zt.dtype)
        x0_real = x0_from_eps(zt, eps_neg + cfg_scale * (eps_pos - eps_neg), t, alphas_cumprod)
    return dmd_loss(z_hat, x0_fake, x0_real)


def fake_score_loss(
    z_hat: torch.Tensor,
    fake_eps_fn: EpsFn,
    prompt_embeds: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    generator: torch.Generator | Draws,
) -> torch.Tensor:
    """The fake score net's denoising loss on the generator's (detached) latents: eps-MSE, t ~ U[0, 1000)."""
    z = z_hat.detach()
    t, noise = _draw(z, 0, NUM_TIMESTEPS, generator)
    zt = add_noise(z, noise, t, alphas_cumprod)
    eps = fake_eps_fn(zt, t, _batched(prompt_embeds, z.shape[0]))
    return F.mse_loss(eps.float(), noise.float())


def generator_loss(
    hq_hat: torch.Tensor,
    hq: torch.Tensor,
    vsd: torch.Tensor,
    lpips_fn: LpipsFn | None,
    lambda_l2: float = 1.0,
    lambda_lpips: float = 2.0,
    lambda_vsd: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_G = lambda_l2 MSE(hq_hat, hq) + lambda_lpips LPIPS(hq_hat, hq) + lambda_vsd vsd, images in [-1, 1].
    Returns the total and its detached parts for logging; `lpips_fn` may be None only when lambda_lpips is 0."""
    l2 = F.mse_loss(hq_hat.float(), hq.float())
    if lambda_lpips > 0:
        if lpips_fn is None:
            raise ValueError(f"generator_loss: lambda_lpips={lambda_lpips} needs an lpips_fn")
        lpips = lpips_fn(hq_hat, hq).float().mean()
    else:
        lpips = l2.new_zeros(())
    total = lambda_l2 * l2 + lambda_lpips * lpips + lambda_vsd * vsd
    return total, {"l2": l2.detach(), "lpips": lpips.detach(), "vsd": vsd.detach()}
