"""ResShift.respaced: the teacher at fewer steps, the network still receiving its original timestep indices."""

import pytest
import torch

from sr.diffusion.resshift import ResShift
from tests.pipeline_fixtures import default_params

T15 = ResShift.from_params(default_params().teacher.diffusion)  # v1: T=15


class Recorder:
    """An x0-predictor that records the indices it is called with and depends on them (and on its input)."""

    def __init__(self):
        self.calls: list[int] = []

    def __call__(self, x, t, lq):
        self.calls.append(int(t[0]))
        return 0.5 * x + 0.01 * t.float().reshape(-1, 1, 1, 1)


def test_indices_and_etas_of_four_and_one_steps():
    four = T15.respaced(4)
    assert four.timestep_map.tolist() == [0, 5, 9, 14] and four.steps == 4
    assert torch.equal(four.etas, T15.etas[[0, 5, 9, 14]])
    one = T15.respaced(1)
    assert one.timestep_map.tolist() == [14] and torch.equal(one.etas, T15.etas[[14]])
    # respacing a respaced schedule maps to the ORIGINAL indices
    assert four.respaced(2).timestep_map.tolist() == [0, 14]
    for bad in (0, 16):
        with pytest.raises(ValueError, match="steps must be in 1..15"):
            T15.respaced(bad)


def test_sampler_visits_original_indices_and_keeps_the_start_state():
    y, noise, lq = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    rec = Recorder()
    T15.respaced(4).sample(rec, y, lq, noise, deterministic=True)
    assert rec.calls == [14, 9, 5, 0]
    # x_T is the same as the full schedule's (eta_T unchanged), and the ddim weights still sum to one
    assert torch.equal(T15.respaced(4).prior_sample(y, noise), T15.prior_sample(y, noise))
    k, m, j = T15.respaced(4).ddim_coefficients()
    assert torch.allclose(k + m + j, torch.ones(4, dtype=torch.float64))


def test_full_respacing_is_the_original_sampler():
    y, noise, lq = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    full = T15.sample(Recorder(), y, lq, noise, deterministic=True)
    same = T15.respaced(15).sample(Recorder(), y, lq, noise, deterministic=True)
    assert torch.allclose(full, same, atol=0, rtol=0)


def test_one_step_is_the_students_single_prediction():
    # x0 = model(scale_input(x_T, T-1), T-1, lq): exactly the one-step student's inference
    y, noise, lq = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    rec = Recorder()
    out = T15.respaced(1).sample(rec, y, lq, noise, deterministic=True)
    x_T = T15.prior_sample(y, noise)
    t = torch.tensor([14])
    assert torch.allclose(out, rec(T15.scale_input(x_T, t), t, lq), atol=1e-6)
    assert rec.calls[0] == 14
