"""HSD: the implied noise inverts q_sample, the direction vanishes when student == teacher, and its sign."""

import torch

from sr.diffusion.resshift import ResShift
from sr.losses.hsd import hsd_direction, hsd_loss, hsd_weight_at, implied_noise
from tests.pipeline_fixtures import v1_diffusion

DIFFUSION = ResShift.from_params(v1_diffusion())  # T=15, κ=2, p=0.3, 0.04, 0.99


def _frozen_teacher(x, t, lq):
    return 0.5 * x  # any fixed map; the teacher is never trained here


def test_implied_noise_recovers_the_noise_q_sample_added():
    x0, y, noise = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    s = torch.tensor([0, 1, 2])
    xs = DIFFUSION.q_sample(x0, y, s, noise)
    torch.testing.assert_close(implied_noise(DIFFUSION, xs, x0, y, s), noise, atol=1e-4, rtol=1e-4)


def test_hsd_gradient_is_zero_when_student_equals_teacher():
    z = torch.randn(2, 4, 8, 8)
    student = z.clone().requires_grad_(True)
    y, lq, noise = torch.randn(2, 4, 8, 8), torch.zeros(2, 3, 8, 8), torch.randn(2, 4, 8, 8)
    s = torch.tensor([0, 2])
    g = hsd_direction(_frozen_teacher, DIFFUSION, student.detach(), z, y, lq, s, noise)
    assert g.abs().max() == 0
    hsd_loss(student, g).sum().backward()
    assert student.grad.abs().max() == 0


def test_hsd_gradient_pushes_the_student_towards_the_teacher_for_an_identity_denoiser():
    # a teacher that always predicts x0 = 0 (with y = 0) implies ε̂(x) = x / (κ√η_s), so g = (1-η_s)/(κ√η_s)·(ẑ_s − ẑ_tea)
    def teacher(x, t, lq):
        return torch.zeros_like(x)

    student = torch.full((1, 2, 2, 2), 1.0, requires_grad=True)
    target = torch.zeros(1, 2, 2, 2)
    s = torch.tensor([1])
    g = hsd_direction(teacher, DIFFUSION, student.detach(), target, torch.zeros_like(target),
                      torch.zeros(1, 3, 2, 2), s, torch.randn(1, 2, 2, 2))
    eta = float(DIFFUSION.etas[1])
    expected = (1 - eta) / (DIFFUSION.kappa * eta**0.5)
    torch.testing.assert_close(g, torch.full_like(g, expected), rtol=1e-4, atol=1e-4)
    hsd_loss(student, g).sum().backward()
    assert (student.grad > 0).all()  # gradient descent lowers the student towards the teacher's 0


def test_implicit_weights_match_the_reference_numbers():
    assert [round(hsd_weight_at(DIFFUSION, s), 2) for s in range(3)] == [25.0, 4.27, 2.84]
