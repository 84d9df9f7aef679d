"""A ResShift-family model (teacher or one-step student): denoiser + frozen first stage + schedule, and its folder.

The folder is `config.json` (a typed `ResShiftConfig`, `model_type: "resshift"`) + `model.safetensors` (the denoiser)
+ the autoencoder's weights when it has any. `save_pretrained` and `from_pretrained` are exact inverses, and the
folder is all that evaluation, packaging and inference need.

The model owns the ResShift pipeline of docs/methods.md §1.5: y = E(bicubic↑lq), x_T = y + κ√η_T·ε, the
deterministic sampler (§2.1) over T or fewer (respaced, §1.7) steps, and D(x̂0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import model_validator
from safetensors.torch import load_file, save_file
from torch import nn

from sr.config import (
    DenoiserArch,
    DiffusionParams,
    DistillRecipe,
    ModelAutoencoderKind,
    SwinUNetParams,
    TeacherParams,
    UNetParams,
    VQParams,
)
from sr.config.base import Section
from sr.diffusion.resshift import ResShift
from sr.models.autoencoder import build_autoencoder, load_autoencoder, save_autoencoder
from sr.models.official import CheckpointError, import_resshift_unet
from sr.models.resshift_swin import ResShiftSwinUNet
from sr.models.unet import UNet
from sr.storage import atomic_dir, materialize

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class ResShiftConfig(Section):
    """What a ResShift-family folder declares about its model (written to config.json)."""

    model_type: Literal["resshift"] = "resshift"
    arch: DenoiserArch
    unet: UNetParams | None = None  # the params of `arch`, the other is None
    swin: SwinUNetParams | None = None
    autoencoder: ModelAutoencoderKind
    vq: VQParams | None = None  # the VQ-f4 architecture, for autoencoder vq_f4
    diffusion: DiffusionParams
    scale: int
    latent_channels: int
    inference_steps: int  # T for a teacher, 1 for a one-step student: what `upscale` runs by default
    recipe: DistillRecipe | None = None  # the distillation recipe of a student
    source: str | None = None  # the official checkpoint an imported teacher came from

    @model_validator(mode="after")
    def _arch_params(self) -> ResShiftConfig:
        if (self.arch == "unet") != (self.unet is not None) or (self.arch == "resshift_swin") != (self.swin is not None):
            raise ValueError(f"arch {self.arch!r} needs exactly its own params ('unet' or 'swin')")
        return self


def bicubic_up(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic ×scale in [-1, 1] without clamping, as ResShift builds its y = E(bicubic↑lq)."""
    return F.interpolate(lq, scale_factor=scale, mode="bicubic", align_corners=False)


def build_denoiser(arch: DenoiserArch, unet: UNetParams | None, swin: SwinUNetParams | None,
                   latent_channels: int) -> nn.Module:
    match arch:
        case "unet":
            assert unet is not None
            return UNet(latent_channels=latent_channels, lq_channels=3, p=unet)
        case "resshift_swin":
            assert swin is not None
            return ResShiftSwinUNet(swin, latent_channels=latent_channels, lq_channels=3)


class ResShiftModel(nn.Module):
    def __init__(self, denoiser: nn.Module, autoencoder: nn.Module, config: ResShiftConfig) -> None:
        super().__init__()
        self.denoiser, self.autoencoder, self.config = denoiser, autoencoder, config
        self.diffusion = ResShift.from_params(config.diffusion)

    @classmethod
    def build(cls, p: TeacherParams, scale: int, cache_dir: Path, denoiser: nn.Module | None = None,
              **config: object) -> ResShiftModel:
        """A model at the teacher params `p`: `denoiser`, or a fresh one (weights from the global RNG); `config`: extra
        ResShiftConfig fields."""
        autoencoder = build_autoencoder(p.autoencoder, cache_dir, scale)
        unet, swin = (p.unet, None) if p.arch == "unet" else (None, p.swin)
        fields = {"arch": p.arch, "unet": unet, "swin": swin, "autoencoder": p.autoencoder.kind,
                  "vq": p.autoencoder.vq if p.autoencoder.kind == "vq_f4" else None, "diffusion": p.diffusion, "scale": scale, "latent_channels": autoencoder.channels,
                  "inference_steps": p.diffusion.steps}
        cfg = ResShiftConfig(**{**fields, **config})
        if denoiser is None:
            denoiser = build_denoiser(p.arch, unet, swin, autoencoder.channels)
        return cls(denoiser, autoencoder, cfg)

    @classmethod
    def from_official(cls, p: TeacherParams, scale: int, cache_dir: Path) -> ResShiftModel:
        """Official ResShift weights (`p.checkpoint`, path or s3://) at `p.swin`, loaded strictly, and checked to give
        finite outputs at the smallest input the network accepts (its `size_multiple`)."""
        if p.checkpoint is None or p.arch != "resshift_swin":
            raise ValueError("teacher: importing official weights needs teacher.checkpoint and arch resshift_swin")
        denoiser = import_resshift_unet(materialize(p.checkpoint, cache_dir), p.swin)
        model = cls.build(p, scale, cache_dir, denoiser, source=p.checkpoint).eval()
        side = model.size_multiple
        lq_side = side * model.autoencoder.factor // scale
        out = model.upscale(torch.zeros(1, 3, lq_side, lq_side), torch.zeros(1, model.config.latent_channels, side, side),
                            steps=1)
        if not torch.isfinite(out).all():
            raise CheckpointError(f"{p.checkpoint}: imported teacher produces non-finite outputs")
        return model

    # ------------------------------------------------------------------------------------------------ properties

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def size_multiple(self) -> int:
        """Latent sides the denoiser accepts are multiples of this."""
        return int(self.denoiser.size_multiple)

    def schedule(self, steps: int | None = None) -> ResShift:
        """The schedule at `steps` deterministic steps (default the folder's inference steps): T, or respaced."""
        steps = self.config.inference_steps if steps is None else steps
        return self.diffusion if steps == self.diffusion.steps else self.diffusion.respaced(steps)

    # ------------------------------------------------------------------------------------------------ pipeline

    @torch.no_grad()
    def encode_lq(self, lq: torch.Tensor) -> torch.Tensor:
        """y = E(bicubic↑lq): the latent the diffusion shifts towards."""
        return self.autoencoder.encode(bicubic_up(lq, self.scale))

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decode(x0).clamp(-1, 1)

    @torch.no_grad()
    def upscale(self, lq: torch.Tensor, noise: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """LQ in [-1, 1] -> HQ estimate in [-1, 1] with the deterministic sampler from x_T = y + κ√η_T·noise."""
        y = self.encode_lq(lq)
        x0 = self.schedule(steps).sample(self.denoiser, y, lq, noise.to(y), deterministic=True)
        return self.decode(x0)

    # ------------------------------------------------------------------------------------------------ folder

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the folder atomically: a killed save never leaves a folder that looks complete."""
        with atomic_dir(Path(folder)) as tmp:
            (tmp / CONFIG_FILE).write_text(json.dumps(self.config.model_dump(mode="json"), indent=2, sort_keys=True)
                                           + "\n")
            state = {k: v.contiguous() for k, v in self.denoiser.state_dict().items()}
            save_file(state, str(tmp / WEIGHTS_FILE))
            save_autoencoder(self.autoencoder, tmp)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> ResShiftModel:
        folder = Path(folder)
        config = ResShiftConfig.model_validate(read_config(folder))
        autoencoder = load_autoencoder(config.autoencoder, folder, config.scale, config.vq)
        denoiser = build_denoiser(config.arch, config.unet, config.swin, config.latent_channels)
        denoiser.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        return cls(denoiser, autoencoder, config).eval().requires_grad_(False)


def read_config(folder: Path) -> dict:
    """A model folder's config.json as a dict; one line naming the folder when there is none."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not a model folder (no {CONFIG_FILE})")
    return json.loads(path.read_text())
