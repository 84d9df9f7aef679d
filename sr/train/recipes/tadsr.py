"""TAD-SR (docs/methods.md §3): L_G = λ_mse·MSE(ẑ_s, ẑ_tea) + λ_HSD·HSD + λ_adv·hinge-G, and a time-aware
discriminator on the frozen teacher encoder's features of noisy latents (hinge D loss)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sr.config import TadsrParams
from sr.losses import adversarial, distillation, hsd
from sr.models.discriminators import TimeAwareDiscriminator, feature_channels
from sr.models.resshift import ResShiftModel
from sr.seeds import Draws
from sr.train.recipes.base import DistillBatch, GeneratorPass, Recipe, randint, randn


@dataclass
class TadsrFakes:
    fake: torch.Tensor  # the student's x̂0, detached
    t_d: torch.Tensor  # the discriminator's noise step per sample
    noise_d: torch.Tensor  # and its noise, shared by real and fake


def noisy_features(teacher: ResShiftModel, z: torch.Tensor, y: torch.Tensor, lq: torch.Tensor, t: torch.Tensor,
                   noise: torch.Tensor) -> list[torch.Tensor]:
    """The frozen teacher encoder's features of q(z, t) (with gradient to z when z has one)."""
    diffusion = teacher.diffusion
    xt = diffusion.q_sample(z, y, t, noise)
    return teacher.denoiser.encoder_features(diffusion.scale_input(xt, t), t, lq)


class TADSR(Recipe):
    loss_names = ("mse", "hsd", "adv", "loss_d")

    def __init__(self, p: TadsrParams, teacher: ResShiftModel) -> None:
        super().__init__(teacher)
        self.p, self.disc_lr = p, p.disc_lr
        side = math.lcm(teacher.size_multiple, 8)  # any latent the teacher accepts: only the feature widths matter
        device = next(teacher.denoiser.parameters()).device
        probe = torch.zeros(1, teacher.config.latent_channels, side, side, device=device)
        widths = feature_channels(teacher.denoiser.encoder_features, probe, probe.new_zeros(1, 3, side, side))
        arch = teacher.config.unet if teacher.config.unet is not None else teacher.config.swin
        self.discs["latent"] = TimeAwareDiscriminator(widths, arch.model_channels, p.c_dim)

    def generator_pass(self, teacher: ResShiftModel, batch: DistillBatch, draws: Draws) -> GeneratorPass:
        p, diffusion, b = self.p, teacher.diffusion, batch
        z_s = self.student_x0(teacher, b)
        n = z_s.shape[0]
        s = randint(p.hsd_steps, n, draws, z_s.device)
        direction = hsd.hsd_direction(teacher.denoiser, diffusion, z_s.detach(), b.target, b.y, b.lq, s, randn(z_s, draws))
        t_d = randint(diffusion.steps - 1, n, draws, z_s.device)
        noise_d = randn(z_s, draws)
        fake = noisy_features(teacher, z_s, b.y, b.lq, t_d, noise_d)
        losses = {
            "mse": distillation.distill_loss(z_s, b.target).mean(),
            "hsd": hsd.hsd_loss(z_s, direction).mean(),
            "adv": adversarial.hinge_g_loss(self.discs["latent"](fake, t_d)),
        }
        total = p.lambda_mse * losses["mse"] + p.lambda_hsd * losses["hsd"] + p.lambda_adv * losses["adv"]
        return GeneratorPass(losses, total, z_s, TadsrFakes(z_s.detach(), t_d, noise_d))

    def discriminator_loss(self, teacher: ResShiftModel, batch: DistillBatch, fakes: TadsrFakes) -> torch.Tensor:
        """Real (noisy HQ latent) and fake go through the discriminator as one doubled batch (GroupNorm is per
        sample)."""
        t2 = torch.cat([fakes.t_d, fakes.t_d])
        with torch.no_grad():
            feats = noisy_features(teacher, torch.cat([batch.z_hq, fakes.fake]), torch.cat([batch.y, batch.y]),
                                   torch.cat([batch.lq, batch.lq]), t2, torch.cat([fakes.noise_d, fakes.noise_d]))
        real, fake = zip(*(logit.chunk(2) for logit in self.call("latent")(feats, t2)))
        return adversarial.hinge_d_loss(list(real), list(fake))
