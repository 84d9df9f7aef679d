"""The GAN baseline's network as a model folder: basicsr's SRVGGNetCompact, Real-ESRGAN's compact generator
(realesr-general-x4v3 is num_feat 64, num_conv 32; the embedded default is smaller). docs/methods.md §6.4.

A folder holds config.json (`model_type: srvgg`) and model.safetensors; the network works in [0, 1] as Real-ESRGAN's
does, the model takes and returns [-1, 1] like every other model here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from sr.config.base import Section
from sr.storage import atomic_dir

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class SRVGGConfig(Section):
    model_type: Literal["srvgg"] = "srvgg"
    scale: int
    num_feat: int
    num_conv: int
    inference_steps: int = 1


def build_network(config: SRVGGConfig) -> nn.Module:
    from basicsr.archs.srvgg_arch import SRVGGNetCompact  # basicsr pulls torchvision: only when used

    return SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=config.num_feat, num_conv=config.num_conv,
                           upscale=config.scale, act_type="prelu")


class SRVGGModel(nn.Module):
    """lq in [-1, 1] (B,3,h,w) -> hq in [-1, 1] (B,3,h·scale,w·scale), one forward pass."""

    def __init__(self, net: nn.Module, config: SRVGGConfig) -> None:
        super().__init__()
        self.net, self.config = net, config

    @classmethod
    def build(cls, config: SRVGGConfig) -> SRVGGModel:
        return cls(build_network(config), config)

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        return (self.net((lq + 1) / 2) * 2 - 1).clamp(-1, 1)

    def save_pretrained(self, folder: str | Path) -> None:
        with atomic_dir(Path(folder)) as tmp:
            (tmp / CONFIG_FILE).write_text(json.dumps(self.config.model_dump(mode="json"), indent=2, sort_keys=True)
                                           + "\n")
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(tmp / WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> SRVGGModel:
        folder = Path(folder)
        config = SRVGGConfig.model_validate(json.loads((folder / CONFIG_FILE).read_text()))
        model = cls.build(config)
        model.net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        return model.eval().requires_grad_(False)
