"""What every one-step recipe shares: the typed micro-batch, the generator pass's result, and the Recipe module.

A recipe is an nn.Module holding exactly what it trains (the student, and a downsampler, discriminators or the
student's own decoder when it has them), so its state_dict is the checkpoint's "nets". It declares its loss names, its generator loss, its
discriminator loss (or none) and its parameter groups; the trainer (sr/train/distill.py) runs any recipe the same way.
The student starts as a copy of the frozen teacher's denoiser and always runs at the last index from
x_T = y + κ√η_T·ε (docs/methods.md §2.2).
"""

from __future__ import annotations

import copy
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from sr.losses import distillation
from sr.models.resshift import ResShiftModel
from sr.seeds import Draws


@dataclass
class DistillBatch:
    """One micro-batch on the device: images in [-1, 1], their latents, the start state and the teacher's target."""

    hq: torch.Tensor
    lq: torch.Tensor
    y: torch.Tensor  # E(bicubic↑lq)
    z_hq: torch.Tensor  # E(hq)
    x_T: torch.Tensor  # y + κ√η_T·ε
    target: torch.Tensor  # the teacher's deterministic T-step x̂0 from the same x_T


@dataclass
class GeneratorPass:
    losses: dict[str, torch.Tensor]  # unweighted, for the curves
    total: torch.Tensor  # the weighted sum that is back-propagated
    x0: torch.Tensor  # the student's one-step latent (with its graph), for image-space terms
    fakes: Any = None  # what the recipe's discriminator pass needs, detached (a dataclass of the recipe's own)


def randint(high: int, n: int, draws: Draws, device: torch.device) -> torch.Tensor:
    return draws.randint(0, high, n).to(device)


def randn(like: torch.Tensor, draws: Draws) -> torch.Tensor:
    return draws.randn(like.shape).to(like.device, like.dtype)


class Recipe(nn.Module, metaclass=ABCMeta):
    loss_names: ClassVar[tuple[str, ...]]  # every loss the recipe logs; "loss_d" when it has discriminators
    disc_lr: float | None = None

    def __init__(self, teacher: ResShiftModel) -> None:
        super().__init__()
        self.student = copy.deepcopy(teacher.denoiser).train().requires_grad_(True)
        self.discs = nn.ModuleDict()
        self.decoder: nn.Module | None = None  # the student's own decoder (sr.models.autoencoder.PixelUnshuffleRefine)
        self.decoder_lr = 0.0
        self.calls: dict[str, nn.Module] = {}  # DDP wrappers, after `prepare`

    def generator_modules(self) -> dict[str, nn.Module]:
        """What the recipe's generator optimizer trains, by name."""
        return {"student": self.student}

    def generator_groups(self, lr: float) -> list[dict]:
        return [{"params": list(self.student.parameters()), "lr": lr}]

    def attach_decoder(self, decoder: nn.Module, lr: float) -> None:
        """Give the student a decoder of its own, trained with the generator at `lr` by the image-space terms."""
        self.decoder, self.decoder_lr = decoder.train().requires_grad_(True), lr

    def trained_modules(self) -> dict[str, nn.Module]:
        """Everything the generator step trains: the recipe's modules and the student's decoder, if any."""
        return {**self.generator_modules(), **({"decoder": self.decoder} if self.decoder is not None else {})}

    def param_groups(self, lr: float) -> list[dict]:
        decoder = [{"params": list(self.decoder.parameters()), "lr": self.decoder_lr}] if self.decoder else []
        return [*self.generator_groups(lr), *decoder]

    def prepare(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap every trained module for DDP (and the device); calls go through the wrappers from now on."""
        self.calls = {name: wrap(m) for name, m in {**self.trained_modules(), **self.discs}.items()}

    def call(self, name: str) -> nn.Module:
        """The module to run: its DDP wrapper after `prepare`, else itself (state dicts stay unwrapped)."""
        return self.calls[name] if name in self.calls else {**self.trained_modules(), **self.discs}[name]

    def generator_calls(self) -> list[nn.Module]:
        return [self.call(name) for name in self.trained_modules()]

    def decode(self, teacher: ResShiftModel, x0: torch.Tensor) -> torch.Tensor:
        """The image of a latent: by the student's own decoder when it has one, else by the teacher's (frozen)."""
        return self.call("decoder")(x0) if self.decoder is not None else teacher.autoencoder.decode(x0)

    def disc_calls(self) -> list[nn.Module]:
        return [self.call(name) for name in self.discs]

    def student_x0(self, teacher: ResShiftModel, batch: DistillBatch) -> torch.Tensor:
        return distillation.one_step(self.call("student"), teacher.diffusion, batch.x_T, batch.lq)

    @abstractmethod
    def generator_pass(self, teacher: ResShiftModel, batch: DistillBatch, draws: Draws) -> GeneratorPass:
        """The student's (and a downsampler's) losses on one micro-batch; discriminators are called unwrapped and
        frozen here. Random draws come from `draws` only."""

    def discriminator_loss(self, teacher: ResShiftModel, batch: DistillBatch, fakes: Any) -> torch.Tensor:
        raise ValueError(f"{type(self).__name__} has no discriminator")
