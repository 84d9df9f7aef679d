"""Import ResShift's released checkpoints (`resshift_realsrx4_*.pth`, `autoencoder_vq_f4.pth`) into our modules.

The only place in the project that calls `torch.load`, and always with `weights_only=True` (no pickled code runs).
Released files come in a few wrappings, all handled here: a bare state dict (the VQ autoencoder), an EMA state dict
saved from a DistributedDataParallel model (every key prefixed `module.`), a training checkpoint with the weights
under `state_dict`, and keys prefixed `_orig_mod.` by torch.compile. They also carry the Swin constants
`relative_position_index` / `attn_mask` as buffers, which our modules derive instead of storing; those entries are
dropped when the target module's state_dict does not hold them. Anything else that does not match is an error.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr.config import SwinUNetParams
from sr.models.resshift_swin import ResShiftSwinUNet
from sr.models.vq_f4 import VQF4

DERIVED_BUFFERS = ("relative_position_index", "attn_mask")
WRAPPER_KEYS = ("state_dict", "model")
KEY_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """An official checkpoint that cannot be read or does not fit the target module; one line naming the file."""


def _load_failure(err: Exception) -> str:
    """The informative sentence of torch.load's multi-paragraph error, on one line."""
    text = str(err)
    if "WeightsUnpickler error:" in text:  # weights_only refusals bury the cause after advice on unsafe loading
        text = text.split("WeightsUnpickler error:", 1)[1]
    text = text.strip().split("\n\n")[0]
    text = " ".join(text.split()).split(". ")[0]
    return text[:200] or type(err).__name__


def load_official_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a released .pth, unwrapped and with DDP / torch.compile prefixes stripped (on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: official checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:  # torch's ways of "unreadable"
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({_load_failure(err)})") from None
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue  # e.g. 'iters_start', 'log_step' next to the weights
        name = str(key)
        stripped = True
        while stripped:
            stripped = False
            for prefix in KEY_PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix) :], True
        state[name] = value
    if not state:
        raise CheckpointError(f"{path}: holds no tensors")
    return state


def load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> nn.Module:
    """Strict load; a mismatch raises one line naming the file and the first few offending keys."""
    own = module.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.endswith(DERIVED_BUFFERS)}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch (file vs model)", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    if problems:
        raise CheckpointError(f"{path}: does not fit {type(module).__name__}: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)
    return module


def import_resshift_unet(path: Path, p: SwinUNetParams) -> ResShiftSwinUNet:
    """A released ResShift denoiser (e.g. resshift_realsrx4_s15_v1.pth) built at `p` (the official config)."""
    return load_into(ResShiftSwinUNet(p), load_official_state_dict(path), Path(path))


def import_vq_f4(path: Path, **config: Any) -> VQF4:
    """The released VQ-f4 first stage (autoencoder_vq_f4.pth); `config`: VQF4 arguments, default the official ones."""
    return load_into(VQF4(**config), load_official_state_dict(path), Path(path))
