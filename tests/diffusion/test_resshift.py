"""ResShift math against the numeric fixtures of docs/methods.md §1.2 / §2.1 and against its own marginals."""

from __future__ import annotations

import math

import pytest
import torch

from sr.diffusion.resshift import ResShift, eta_schedule
from tests.pipeline_fixtures import v1_diffusion

SQRT_ETA_V1 = [0.02, 0.11717, 0.17630, 0.23363, 0.29157, 0.35101, 0.41236, 0.47586, 0.54167, 0.60991, 0.68066,
               0.75399, 0.82995, 0.90861, 0.99]  # fmt: skip
ETA_V1 = [0.0004, 0.01373, 0.03108, 0.05458, 0.08502, 0.12321, 0.17004, 0.22644, 0.29341, 0.37199, 0.46330,
          0.56849, 0.68882, 0.82557, 0.9801]  # fmt: skip
K_V1 = [1, .83124, .34237, .25547, .21227, .18666, .17030, .15963, .15282, .14885, .14709, .14716, .14881, .15185,
        .15617]  # fmt: skip
M_V1 = [0, .17070, .66456, .75463, .80127, .83067, .85123, .86655, .87850, .88812, .89606, .90275, .90847, .91343,
        .91778]  # fmt: skip
J_V1 = [0, -.00194, -.00693, -.01011, -.01354, -.01733, -.02153, -.02619, -.03132, -.03696, -.04315, -.04991,
        -.05728, -.06528, -.07395]  # fmt: skip


@pytest.fixture
def v1() -> ResShift:
    return ResShift.from_params(v1_diffusion())  # T=15, κ=2, p=0.3, 0.04, 0.99


def close(actual: torch.Tensor, expected: list[float], atol: float = 1e-4) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float64), atol=atol, rtol=0)


def test_eta_schedule_v1_fixture(v1: ResShift) -> None:
    assert v1.etas.dtype == torch.float64 and v1.steps == 15
    close(v1.etas.sqrt(), SQRT_ETA_V1)
    close(v1.etas, ETA_V1)


def test_eta_schedule_v3_fixture() -> None:
    etas = eta_schedule(steps=4, kappa=2.0, power=0.3, min_noise_level=0.2, etas_end=0.99)
    close(etas.sqrt(), [0.1, 0.52010, 0.76138, 0.99])
    close(etas, [0.01, 0.2705, 0.5797, 0.9801])


def test_eta_schedule_rejects_bad_levels() -> None:
    with pytest.raises(ValueError, match="etas_end"):
        eta_schedule(steps=4, kappa=2.0, power=0.3, min_noise_level=4.0, etas_end=0.99)


def test_ddim_coefficients_fixture(v1: ResShift) -> None:
    k, m, j = v1.ddim_coefficients()
    close(k, K_V1)
    close(m, M_V1)
    close(j, J_V1)
    close(k + m + j, [1.0] * 15, atol=1e-12)


def test_q_sample_prior_and_scale(v1: ResShift) -> None:
    x0, y, noise = torch.full((2, 1, 2, 2), 1.0), torch.full((2, 1, 2, 2), -1.0), torch.full((2, 1, 2, 2), 0.5)
    t = torch.tensor([0, 14])
    xt = v1.q_sample(x0, y, t, noise)
    for b, index in enumerate([0, 14]):
        eta = ETA_V1[index]
        assert xt[b, 0, 0, 0].item() == pytest.approx(1 - 2 * eta + 2 * math.sqrt(eta) * 0.5, abs=1e-6)
        scaled = v1.scale_input(xt, t)[b, 0, 0, 0].item()
        assert scaled == pytest.approx(xt[b, 0, 0, 0].item() / math.sqrt(4 * eta + 1), abs=1e-6)
    assert v1.prior_sample(y, noise)[0, 0, 0, 0].item() == pytest.approx(-1 + 2 * 0.99 * 0.5, abs=1e-6)


def posterior_coefficients(diffusion: ResShift, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read the posterior's linear map mean = a x_t + b x0 off the implementation itself."""
    ones, zeros = torch.ones(len(t), 1, 1, 1), torch.zeros(len(t), 1, 1, 1)
    a = diffusion.posterior_mean_variance(ones, zeros, t)[0].flatten()
    b = diffusion.posterior_mean_variance(zeros, ones, t)[0].flatten()
    variance = diffusion.posterior_mean_variance(zeros, zeros, t)[1].flatten()
    return a.double(), b.double(), variance.double()


def test_posterior_composed_with_marginal_is_marginal_analytically(v1: ResShift) -> None:
    # x_t ~ N(x0 + eta_t (y - x0), k^2 eta_t) then x_{t-1} ~ N(a x_t + b x0, v) must give q(x_{t-1} | x0).
    t = torch.arange(1, 15)
    a, b, variance = posterior_coefficients(v1, t)
    etas, prev, kappa, x0, y = v1.etas[1:], v1.etas[:-1], v1.kappa, 0.7, -0.4
    mean = a * (x0 + etas * (y - x0)) + b * x0
    var = a**2 * kappa**2 * etas + variance
    torch.testing.assert_close(mean, x0 + prev * (y - x0), atol=1e-6, rtol=0)
    torch.testing.assert_close(var, kappa**2 * prev, atol=1e-6, rtol=1e-5)


def test_posterior_at_t0_returns_x0_and_clips_log_variance(v1: ResShift) -> None:
    xt, x0 = torch.randn(1, 2, 3, 3, generator=torch.Generator().manual_seed(0)), torch.ones(1, 2, 3, 3)
    mean, variance, log_variance = v1.posterior_mean_variance(xt, x0, torch.tensor([0]))
    torch.testing.assert_close(mean, x0)
    assert variance.item() == 0.0
    _, variance_1, _ = v1.posterior_mean_variance(xt, x0, torch.tensor([1]))
    assert log_variance.item() == pytest.approx(math.log(variance_1.item()), rel=1e-6)
    out = v1.ancestral_step(x0, xt, torch.tensor([0]), torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, x0)  # noise masked at t = 0


def test_posterior_composed_with_marginal_monte_carlo(v1: ResShift) -> None:
    g = torch.Generator().manual_seed(0)
    t = torch.tensor([1, 3, 8, 14])
    shape = (4, 1, 128, 128)  # 16384 draws per timestep: std error of the variance ~1.1 %
    x0, y = torch.full(shape, 0.7), torch.full(shape, -0.4)
    xt = v1.q_sample(x0, y, t, torch.randn(shape, generator=g))
    x_prev = v1.ancestral_step(x0, xt, t, g)
    for b, index in enumerate(t.tolist()):
        eta_prev, eta = ETA_V1[index - 1], ETA_V1[index]
        sample = x_prev[b].double()
        want_std = v1.kappa * math.sqrt(eta_prev)
        assert abs(sample.mean().item() - (0.7 - 1.1 * eta_prev)) < 5 * want_std / 128
        assert sample.var().item() / want_std**2 == pytest.approx(1.0, abs=0.05)
        # The same tolerance rejects the marginal at t and a posterior without its own noise.
        assert abs(eta / eta_prev - 1) > 0.15 and abs(eta_prev / eta - 1) > 0.15


def oracle(x0: torch.Tensor, seen: list[torch.Tensor]):
    def model_fn(x_scaled: torch.Tensor, t: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        seen.append(x_scaled)
        return x0

    return model_fn


def test_deterministic_sampler_with_oracle_follows_the_marginal(v1: ResShift) -> None:
    g = torch.Generator().manual_seed(0)
    x0, y, noise = (torch.randn(2, 3, 4, 4, generator=g) for _ in range(3))
    lq = torch.zeros(2, 3, 4, 4)
    seen: list[torch.Tensor] = []
    out = v1.sample(oracle(x0, seen), y, lq, noise, deterministic=True)
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)
    assert len(seen) == 15
    # the states fed to the network, x_T first, recovered from their scaled inputs
    states = [x * (v1.kappa**2 * float(v1.etas[14 - i]) + 1) ** 0.5 for i, x in enumerate(seen)]
    # With a perfect x0 the DDIM step keeps the implied noise fixed: every state is q_sample with the same eps.
    x_T = states[0]
    eps = (x_T - x0 - 0.9801 * (y - x0)) / (2 * 0.99)
    for i, state in enumerate(states):
        t = torch.full((2,), 14 - i)
        torch.testing.assert_close(state, v1.q_sample(x0, y, t, eps), atol=1e-5, rtol=0)
        torch.testing.assert_close(seen[i], v1.scale_input(state, t))
    torch.testing.assert_close(x_T, v1.prior_sample(y, noise))


def test_ancestral_sampler_with_oracle_ends_at_x0_and_is_seeded(v1: ResShift) -> None:
    g = torch.Generator().manual_seed(0)
    x0, y, noise = (torch.randn(2, 3, 4, 4, generator=g) for _ in range(3))
    lq = torch.zeros(2, 3, 4, 4)

    def run(seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        seen: list[torch.Tensor] = []
        return v1.sample(oracle(x0, seen), y, lq, noise, False, torch.Generator().manual_seed(seed)), seen

    (out_a, states_a), (_, states_b), (_, states_c) = run(1), run(1), run(2)
    torch.testing.assert_close(out_a, x0, atol=1e-6, rtol=0)
    torch.testing.assert_close(states_a[7], states_b[7])
    assert (states_a[7] - states_c[7]).abs().max() > 1e-2
    with pytest.raises(ValueError, match="Generator"):
        v1.sample(oracle(x0, []), y, lq, noise, deterministic=False)


def test_training_loss_is_per_sample_mse(v1: ResShift) -> None:
    x0, y, noise = torch.ones(3, 2, 4, 4), torch.zeros(3, 2, 4, 4), torch.zeros(3, 2, 4, 4)
    t = torch.tensor([0, 5, 14])
    loss = v1.training_loss(lambda x, t, lq: torch.zeros_like(x), x0, y, torch.zeros(3, 3, 4, 4), t, noise)
    torch.testing.assert_close(loss, torch.ones(3))
    perfect = v1.training_loss(lambda x, t, lq: x0, x0, y, torch.zeros(3, 3, 4, 4), t, noise)
    torch.testing.assert_close(perfect, torch.zeros(3))
