"""Co-learning (docs/methods.md §5): distillation + GT regression + an HQ discriminator on the student's latent, and
a learnable downsampler G whose LQ estimate an LQ discriminator judges (its gradient reaches the student through G)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sr.config import ColearnParams
from sr.losses import adversarial, distillation
from sr.models.discriminators import LatentDiscriminator
from sr.models.downsampler import build_downsampler
from sr.models.resshift import ResShiftModel
from sr.seeds import Draws
from sr.train.recipes.base import DistillBatch, GeneratorPass, Recipe, randn


@dataclass
class ColearnFakes:
    fake: torch.Tensor  # the student's x̂0, detached
    y_hat: torch.Tensor  # G's LQ latent estimate from it, detached


class CoLearning(Recipe):
    loss_names = ("distill", "gt", "hq_adv", "lq_adv", "down", "loss_d")

    def __init__(self, p: ColearnParams, teacher: ResShiftModel) -> None:
        super().__init__(teacher)
        self.p, self.disc_lr = p, p.disc_lr
        c, channels = teacher.config, teacher.config.latent_channels
        self.downsampler = build_downsampler(p.downsampler, c.arch, c.unet, c.swin, channels)
        self.discs["hq"] = LatentDiscriminator(channels, p.disc_channels, p.disc_levels, p.c_dim)
        self.discs["lq"] = LatentDiscriminator(channels, p.disc_channels, p.disc_levels, p.c_dim)

    def generator_modules(self) -> dict[str, nn.Module]:
        return {"student": self.student, "downsampler": self.downsampler}

    def generator_groups(self, lr: float) -> list[dict]:
        return [*super().generator_groups(lr),
                {"params": list(self.downsampler.parameters()), "lr": self.p.downsampler_lr}]

    def generator_pass(self, teacher: ResShiftModel, batch: DistillBatch, draws: Draws) -> GeneratorPass:
        p, b = self.p, batch
        z_s = self.student_x0(teacher, b)
        # one G call for both of its inputs: the student's output (adversarial) and the HQ latent (regression)
        y_hat, y_rec = self.call("downsampler")(
            torch.cat([z_s, b.z_hq]), torch.cat([randn(z_s, draws), randn(z_s, draws)])
        ).chunk(2)
        losses = {
            "distill": distillation.distill_loss(z_s, b.target).mean(),
            "gt": distillation.mse(z_s, b.z_hq).mean(),
            "hq_adv": adversarial.logistic_g_loss(self.discs["hq"](z_s), p.g_loss),
            "lq_adv": adversarial.logistic_g_loss(self.discs["lq"](y_hat), p.g_loss),
            "down": distillation.mse(y_rec, b.y).mean(),
        }
        total = (p.lambda_distill * losses["distill"] + p.lambda_gt * losses["gt"]
                 + p.lambda_hq_adv * losses["hq_adv"] + p.lambda_lq_adv * losses["lq_adv"]
                 + p.lambda_down * losses["down"])  # fmt: skip
        return GeneratorPass(losses, total, z_s, ColearnFakes(z_s.detach(), y_hat.detach()))

    def discriminator_loss(self, teacher: ResShiftModel, batch: DistillBatch, fakes: ColearnFakes) -> torch.Tensor:
        total = torch.zeros((), device=batch.y.device)
        for name, real_x, fake_x in (("hq", batch.z_hq, fakes.fake), ("lq", batch.y, fakes.y_hat)):
            real, fake = zip(*(logit.chunk(2) for logit in self.call(name)(torch.cat([real_x, fake_x]))))
            total = total + adversarial.logistic_d_loss(list(real), list(fake))
        return total
