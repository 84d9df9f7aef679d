"""SinSR losses: values on hand-built denoisers and the sign of their gradients."""

import torch

from sr.diffusion.resshift import ResShift
from sr.losses.distillation import distill_loss, gt_loss, inverse_loss, invert, one_step
from tests.pipeline_fixtures import v1_diffusion

DIFFUSION = ResShift.from_params(v1_diffusion())  # T=15, κ=2, p=0.3, 0.04, 0.99


def test_one_step_feeds_the_scaled_start_state_at_the_last_index():
    seen = {}

    def model(x, t, lq):
        seen["x"], seen["t"] = x, t
        return x

    x_T = torch.full((2, 3, 4, 4), 2.218)
    one_step(model, DIFFUSION, x_T, torch.zeros(2, 3, 4, 4))
    assert seen["t"].tolist() == [14, 14]
    s_T = (DIFFUSION.kappa**2 * float(DIFFUSION.etas[-1]) + 1) ** 0.5
    torch.testing.assert_close(seen["x"], x_T / s_T)


def test_invert_runs_index_zero_with_the_start_state_scaling():
    seen = {}

    def model(x, t, lq):
        seen["x"], seen["t"] = x, t
        return x

    invert(model, DIFFUSION, torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))
    assert seen["t"].tolist() == [0]
    s_T = (4 * 0.99**2 + 1) ** 0.5  # κ=2, √η_T=0.99
    assert abs(float(seen["x"][0, 0, 0, 0]) - 1 / s_T) < 1e-6


def test_distill_loss_value_and_gradient_points_towards_the_teacher():
    student = torch.zeros(2, 3, 2, 2, requires_grad=True)
    teacher = torch.ones(2, 3, 2, 2)
    loss = distill_loss(student, teacher)
    assert loss.tolist() == [1.0, 1.0]
    loss.sum().backward()
    assert (student.grad < 0).all()  # descending moves the student up, to the teacher


def test_inverse_loss_is_zero_for_a_perfect_inverse_and_trains_only_the_student():
    x_T = torch.randn(2, 3, 4, 4)
    teacher_x0 = torch.randn(2, 3, 4, 4, requires_grad=True)
    weight = torch.tensor(1.0, requires_grad=True)
    s_T = (DIFFUSION.kappa**2 * float(DIFFUSION.etas[-1]) + 1) ** 0.5

    def model(x, t, lq):  # maps the scaled teacher output to exactly x_T at index 0
        return weight * (x * s_T - teacher_x0.detach() + x_T)

    loss = inverse_loss(model, DIFFUSION, teacher_x0, x_T, torch.zeros(2, 3, 4, 4))
    torch.testing.assert_close(loss, torch.zeros(2), atol=1e-5, rtol=0)
    loss.sum().backward()
    assert teacher_x0.grad is None


def test_gt_loss_zero_for_an_exact_round_trip_and_no_gradient_through_the_inversion():
    calls = []
    weight = torch.tensor(1.0, requires_grad=True)

    def model(x, t, lq):  # x_T = 3 * z at index 0; z = x_T / 3 at the last index (inputs are scaled by s_T)
        s_T = (DIFFUSION.kappa**2 * float(DIFFUSION.etas[-1]) + 1) ** 0.5
        calls.append(torch.is_grad_enabled())
        return weight * (x * s_T * 3 if int(t[0]) == 0 else x * s_T / 3)

    z = torch.randn(2, 3, 4, 4)
    loss = gt_loss(model, DIFFUSION, z, torch.zeros(2, 3, 4, 4))
    torch.testing.assert_close(loss, torch.zeros(2), atol=1e-5, rtol=0)
    assert calls == [False, True]
    (loss.sum() + 0).backward()
    assert weight.grad is not None
