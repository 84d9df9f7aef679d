"""Build networks from typed params, and save/load a ResShift-family model folder.

A model folder (teacher or student) is `config.json` + `model.safetensors` (the denoiser) + the autoencoder's
weights when it has any, so it is usable on its own: evaluation, packaging and inference read only the folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from sr.config import AutoencoderParams, DiffusionParams, SwinUNetParams, UNetParams
from sr.diffusion.resshift import ResShift
from sr.storage import atomic_dir, materialize


def build_autoencoder(p: AutoencoderParams, cache_dir: Path, scale: int = 4) -> nn.Module:
    """The frozen first stage. `checkpoint` (path or s3://) holds official weights for vq_f4, a diffusers folder for kl."""
    from sr.models.autoencoder import KLAutoencoder, PixelUnshuffle

    match p.kind:
        case "pixel_unshuffle":
            ae: nn.Module = PixelUnshuffle(factor=scale)
        case "vq_f4":
            from sr.models.official import import_vq_f4
            from sr.models.vq_f4 import VQF4

            ae = import_vq_f4(materialize(p.checkpoint, cache_dir)) if p.checkpoint else VQF4()
        case "kl":
            if not p.checkpoint:
                raise ValueError("teacher.autoencoder.checkpoint: the 'kl' autoencoder needs a diffusers folder")
            ae = KLAutoencoder.from_folder(materialize(p.checkpoint, cache_dir))
    ae.eval().requires_grad_(False)
    return ae


def build_denoiser(arch: str, unet: UNetParams, swin: SwinUNetParams, latent_channels: int) -> nn.Module:
    match arch:
        case "unet":
            from sr.models.unet import UNet

            return UNet(latent_channels=latent_channels, lq_channels=3, p=unet)
        case "resshift_swin":
            from sr.models.resshift_swin import ResShiftSwinUNet

            return ResShiftSwinUNet(swin, latent_channels=latent_channels, lq_channels=3)
    raise ValueError(f"unknown denoiser arch {arch!r} (allowed: unet, resshift_swin)")


@dataclass
class ResShiftModel:
    """Everything needed to run a ResShift-family denoiser: network, first stage, schedule, and the config."""

    denoiser: nn.Module
    autoencoder: nn.Module
    diffusion: ResShift
    config: dict[str, Any]

    @property
    def scale(self) -> int:
        return int(self.config["scale"])


def model_config(
    arch: str, unet: UNetParams, swin: SwinUNetParams, autoencoder: AutoencoderParams, diffusion: DiffusionParams,
    scale: int, latent_channels: int, **extra: Any,
) -> dict[str, Any]:
    return {
        "arch": arch,
        "unet": unet.model_dump(mode="json"),
        "swin": swin.model_dump(mode="json"),
        "autoencoder": {"kind": autoencoder.kind},
        "diffusion": diffusion.model_dump(mode="json"),
        "scale": scale,
        "latent_channels": latent_channels,
        **extra,
    }


def save_model_dir(out_dir: Path, model: ResShiftModel) -> None:
    """Write the folder atomically: a killed save never leaves a folder that looks complete."""
    with atomic_dir(out_dir) as tmp:
        (tmp / "config.json").write_text(json.dumps(model.config, indent=2, sort_keys=True) + "\n")
        save_file({k: v.contiguous() for k, v in model.denoiser.state_dict().items()}, str(tmp / "model.safetensors"))
        ae_state = model.autoencoder.state_dict()
        if ae_state:
            save_file({k: v.contiguous() for k, v in ae_state.items()}, str(tmp / "autoencoder.safetensors"))


def load_model_dir(model_dir: Path) -> ResShiftModel:
    config_path = model_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{model_dir}: not a model folder (no config.json)")
    config = json.loads(config_path.read_text())
    ae_params = AutoencoderParams(kind=config["autoencoder"]["kind"])
    if ae_params.kind == "kl":
        from sr.models.autoencoder import KLAutoencoder

        autoencoder: nn.Module = KLAutoencoder.from_folder(model_dir / "autoencoder")
    else:
        autoencoder = build_autoencoder(ae_params, model_dir, config["scale"])
        if (model_dir / "autoencoder.safetensors").exists():
            autoencoder.load_state_dict(load_file(str(model_dir / "autoencoder.safetensors")))
    denoiser = build_denoiser(
        config["arch"], UNetParams(**config["unet"]), SwinUNetParams(**config["swin"]), config["latent_channels"]
    )
    denoiser.load_state_dict(load_file(str(model_dir / "model.safetensors")))
    denoiser.eval().requires_grad_(False)
    autoencoder.eval().requires_grad_(False)
    diffusion = ResShift.from_params(DiffusionParams(**config["diffusion"]))
    return ResShiftModel(denoiser, autoencoder, diffusion, config)
