"""TAD-SR's high-frequency-enhanced score distillation (HSD, docs/methods.md §3.3), with the reference code's bugs fixed.

Student and teacher outputs are re-noised to a small step s with the *same* Gaussian noise n, the frozen teacher
denoises both, and the difference of the noises it implies, g = ε̂(x_s^stu) − ε̂(x_s^tea), is the direction the
student output moves along (an SDS-style surrogate whose gradient is g). g vanishes when student == teacher.

Fixed against TAD-SR's code: n is Gaussian (the code draws uniform [0,1) noise), the teacher's input is scaled
once (the code scales twice), and the teacher must be frozen by the caller (requires_grad False).
"""

from __future__ import annotations

import math

import torch

from sr.diffusion.resshift import ModelFn, ResShift


def implied_noise(
    diffusion: ResShift, xs: torch.Tensor, x0_hat: torch.Tensor, y: torch.Tensor, s: torch.Tensor
) -> torch.Tensor:
    """ε̂ = (x_s − [x̂0 + η_s (y − x̂0)]) / (κ√η_s): the noise that q_sample would have added to x̂0."""
    eta = diffusion.etas[s.cpu()].to(device=xs.device, dtype=xs.dtype).reshape(-1, *([1] * (xs.dim() - 1)))
    return (xs - (x0_hat + eta * (y - x0_hat))) / (diffusion.kappa * eta.sqrt())


@torch.no_grad()
def hsd_direction(
    teacher: ModelFn,
    diffusion: ResShift,
    student_x0: torch.Tensor,
    teacher_x0: torch.Tensor,
    y: torch.Tensor,
    lq: torch.Tensor,
    s: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    """g = ε̂_φ(q(ẑ_s, s, n)) − ε̂_φ(q(ẑ_tea, s, n)), one teacher call on both halves of a doubled batch."""
    x = torch.cat([diffusion.q_sample(student_x0, y, s, noise), diffusion.q_sample(teacher_x0, y, s, noise)])
    y2, lq2, s2 = torch.cat([y, y]), torch.cat([lq, lq]), torch.cat([s, s])
    x0_hat = teacher(diffusion.scale_input(x, s2), s2, lq2)
    eps = implied_noise(diffusion, x, x0_hat, y2, s2)
    eps_student, eps_teacher = eps.chunk(2)
    return eps_student - eps_teacher


def hsd_loss(student_x0: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Per-sample mean(sg[g] ⊙ ẑ_s), (B,): its gradient with respect to ẑ_s is g / (C·H·W)."""
    return (direction.detach() * student_x0).flatten(1).mean(dim=1)


def hsd_weight_at(diffusion: ResShift, s: int) -> float:
    """The implicit weight 1/(κ√η_s) HSD puts on step s (≈25, 4.3, 2.8 for s = 0, 1, 2 at ResShift v1)."""
    return 1.0 / (diffusion.kappa * math.sqrt(float(diffusion.etas[s])))
