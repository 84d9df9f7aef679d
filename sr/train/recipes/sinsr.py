"""SinSR (docs/methods.md §2.2): L = λ_distill·distill + λ_inverse·inverse + λ_gt·gt, no discriminator."""

from __future__ import annotations

from sr.config import SinsrParams
from sr.losses import distillation
from sr.models.resshift import ResShiftModel
from sr.seeds import Draws
from sr.train.recipes.base import DistillBatch, GeneratorPass, Recipe


class SinSR(Recipe):
    loss_names = ("distill", "inverse", "gt")

    def __init__(self, p: SinsrParams, teacher: ResShiftModel) -> None:
        super().__init__(teacher)
        self.p = p

    def generator_pass(self, teacher: ResShiftModel, batch: DistillBatch, draws: Draws) -> GeneratorPass:
        student, diffusion, p = self.call("student"), teacher.diffusion, self.p
        z_s = self.student_x0(teacher, batch)
        losses = {
            "distill": distillation.distill_loss(z_s, batch.target).mean(),
            "inverse": distillation.inverse_loss(student, diffusion, batch.target, batch.x_T, batch.lq).mean(),
            "gt": distillation.gt_loss(student, diffusion, batch.z_hq, batch.lq).mean(),
        }
        total = p.lambda_distill * losses["distill"] + p.lambda_inverse * losses["inverse"] + p.lambda_gt * losses["gt"]
        return GeneratorPass(losses, total, z_s)
