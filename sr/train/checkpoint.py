"""Training checkpoints without pickle: tensors go to safetensors, everything else to JSON.

A checkpoint is any nest of dicts/lists/tensors/scalars (module and optimizer state dicts, RNG states, the step).
It is written to a temp folder and renamed into place, so a run killed mid-write leaves the previous checkpoint as
the latest; the newest `keep` checkpoints survive.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from sr.storage import atomic_dir

_TENSOR = "__tensor__"


def _pack(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {_TENSOR: path}
    if isinstance(obj, dict):
        return {"__dict__": [[_pack(k, f"{path}/k{i}", tensors), _pack(v, f"{path}/{i}", tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        packed = [_pack(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
        return packed if isinstance(obj, list) else {"__tuple__": packed}
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    raise TypeError(f"checkpoint: cannot store {type(obj).__name__} at {path}")


def _unpack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if "__tuple__" in obj:
            return tuple(_unpack(v, tensors) for v in obj["__tuple__"])
        return {_unpack(k, tensors): _unpack(v, tensors) for k, v in obj["__dict__"]}
    return obj


def rng_state(*generators: torch.Generator) -> dict[str, Any]:
    """Global torch/CUDA RNG (dropout and friends) plus the trainer's explicit generators."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "generators": [g.get_state() for g in generators]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], *generators: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    for g, s in zip(generators, state["generators"], strict=True):
        g.set_state(s)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _step_dirs(ckpt_dir: Path) -> list[Path]:
    return sorted(p for p in ckpt_dir.glob("step-[0-9]*") if p.is_dir() and (p / "state.json").exists())


def save_checkpoint(ckpt_dir: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _pack({"step": step, **state}, "s", tensors)
    final = ckpt_dir / f"step-{step:08d}"
    with atomic_dir(final) as tmp:
        save_file(tensors, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(skeleton))
    for old in _step_dirs(ckpt_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_latest(ckpt_dir: Path) -> dict[str, Any] | None:
    """The newest complete checkpoint as saved (with its "step"), or None when there is none."""
    dirs = _step_dirs(ckpt_dir) if ckpt_dir.exists() else []
    if not dirs:
        return None
    latest = dirs[-1]
    tensors = load_file(str(latest / "state.safetensors"))
    return _unpack(json.loads((latest / "state.json").read_text()), tensors)


def seed_everything(seed: int) -> None:
    """Libraries we do not control (cuDNN autotuning, third-party code) still read global RNGs; pin them too."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fingerprint(*parts: object) -> str:
    """A short id of a run's inputs (params JSON, seed, data files by content): its checkpoints live under it."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            h.update(part.name.encode())
            with part.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
