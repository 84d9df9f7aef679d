"""OSEDiff's VSD / fake-score / generator losses on hand-made score functions."""

from __future__ import annotations

import pytest
import torch

from sr.diffusion.sd import add_noise, scaled_linear_alphas_cumprod, x0_from_eps
from sr.losses.vsd import dmd_loss, fake_score_loss, generator_loss, vsd_loss

ABAR = scaled_linear_alphas_cumprod()


def _z(seed: int = 0, shape: tuple[int, ...] = (3, 4, 5, 5)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_dmd_gradient_is_normalised_score_difference():
    z_hat = _z(0).requires_grad_(True)
    x0_fake, x0_real = _z(1), _z(2)
    dmd_loss(z_hat, x0_fake, x0_real).backward()
    weight = (z_hat.detach() - x0_real).abs().mean(dim=(1, 2, 3), keepdim=True)
    expected = 2.0 / z_hat.numel() * (x0_fake - x0_real) / weight  # MSE's constant: 2 / numel
    torch.testing.assert_close(z_hat.grad, expected, rtol=1e-5, atol=1e-9)
    # one sample by hand: weight is its own mean absolute gap, not the batch's
    w0 = float((z_hat.detach()[0] - x0_real[0]).abs().mean())
    assert float(z_hat.grad[0, 1, 2, 3]) == pytest.approx(
        2.0 / z_hat.numel() * float(x0_fake[0, 1, 2, 3] - x0_real[0, 1, 2, 3]) / w0, rel=1e-5
    )


def test_dmd_gradient_vanishes_when_fake_matches_real():
    z_hat = _z(0).requires_grad_(True)
    x0 = _z(1)
    loss = dmd_loss(z_hat, x0, x0)
    loss.backward()
    assert loss.item() == 0.0 and float(z_hat.grad.abs().max()) == 0.0


def test_vsd_loss_uses_cfg_real_score_and_positive_fake_score():
    """Scores that depend on the prompt embedding expose which prompt and which guidance each net received."""
    seen: dict[str, list] = {"t": [], "grad": []}

    def real_eps(zt, t, c):  # eps = c_mean * zt: positive and negative prompts give different scores
        seen["t"].append(t.clone())
        seen["grad"].append(torch.is_grad_enabled())
        return c.mean(dim=(1, 2)).view(-1, 1, 1, 1) * zt

    def fake_eps(zt, t, c):
        seen["grad"].append(torch.is_grad_enabled())
        return 0.5 * c.mean(dim=(1, 2)).view(-1, 1, 1, 1) * zt + 0.1

    pos, neg = torch.full((1, 7, 4), 0.3, dtype=torch.float64), torch.full((1, 7, 4), -0.2, dtype=torch.float64)
    z_hat = _z(0).requires_grad_(True)
    vsd_loss(
        z_hat, real_eps, fake_eps, pos, neg, ABAR, torch.Generator().manual_seed(9), cfg_scale=7.5, t_min=20, t_max=980
    ).backward()

    g = torch.Generator().manual_seed(9)  # redraw in the documented order: timesteps, then noise
    t = torch.randint(20, 980, (3,), generator=g)
    noise = torch.randn(z_hat.shape, generator=g).double()
    zt = add_noise(z_hat.detach(), noise, t, ABAR)
    eps_real = -0.2 * zt + 7.5 * (0.3 * zt - (-0.2) * zt)  # eps_neg + s (eps_pos - eps_neg)
    x0_real = x0_from_eps(zt, eps_real, t, ABAR)
    x0_fake = x0_from_eps(zt, 0.15 * zt + 0.1, t, ABAR)
    weight = (z_hat.detach() - x0_real).abs().mean(dim=(1, 2, 3), keepdim=True)
    expected = 2.0 / z_hat.numel() * (x0_fake - x0_real) / weight
    torch.testing.assert_close(z_hat.grad, expected, rtol=1e-4, atol=1e-9)
    assert all(torch.equal(s, t) for s in seen["t"]) and len(seen["t"]) == 2
    assert not any(seen["grad"]), "score nets must run without autograd"


def test_vsd_timesteps_stay_in_range():
    drawn = []

    def eps(zt, t, c):
        drawn.append(t)
        return torch.zeros_like(zt)

    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        vsd_loss(_z(1, (16, 1, 2, 2)), eps, eps, torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), ABAR, g, 7.5, 100, 103)
    values = torch.cat(drawn)
    assert set(values.tolist()) == {100, 101, 102}


def test_fake_score_loss_is_eps_mse_on_detached_latents():
    z_hat = _z(0).float().requires_grad_(True)
    scale = torch.tensor(1.0, requires_grad=True)
    abar = ABAR.float()

    def oracle(zt, t, c):  # the exact noise from z_t and z_0, so a perfect score gives zero loss
        a = abar[t].view(-1, 1, 1, 1)
        return scale * (zt - a.sqrt() * z_hat.detach()) / (1 - a).sqrt()

    loss = fake_score_loss(z_hat, oracle, torch.zeros(1, 2, 2), abar, torch.Generator().manual_seed(3))
    assert loss.item() < 1e-8
    loss = fake_score_loss(
        z_hat, lambda zt, t, c: scale * 0 * zt, torch.zeros(1, 2, 2), abar, torch.Generator().manual_seed(3)
    )
    g = torch.Generator().manual_seed(3)
    torch.randint(0, 1000, (3,), generator=g)
    assert loss.item() == pytest.approx(float(torch.randn(z_hat.shape, generator=g).square().mean()), rel=1e-6)
    loss.backward()
    assert z_hat.grad is None and scale.grad is not None


def test_generator_loss_weights_and_lpips_requirement():
    hq, hq_hat = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    total, parts = generator_loss(hq_hat, hq, torch.tensor(3.0), lambda a, b: torch.tensor([1.0, 2.0]), 1.0, 2.0, 0.5)
    assert float(parts["l2"]) == pytest.approx(0.25) and float(parts["lpips"]) == pytest.approx(1.5)
    assert float(total) == pytest.approx(0.25 + 2 * 1.5 + 0.5 * 3.0)
    with pytest.raises(ValueError, match="lambda_lpips=2.0 needs an lpips_fn"):
        generator_loss(hq_hat, hq, torch.tensor(0.0), None)
    total, _ = generator_loss(hq_hat, hq, torch.tensor(0.0), None, lambda_lpips=0.0)
    assert float(total) == pytest.approx(0.25)
