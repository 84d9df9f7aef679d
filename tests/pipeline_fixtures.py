"""A tiny version of the embedded default: same stages, same code, seconds instead of minutes."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from sr.config import DiffusionParams, Params, load_params, merge

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "download": {"sources": [{"kind": "bundled", "names": ["astronaut", "chelsea", "coffee", "rocket", "china"]}],
                 "min_val_images": 1},
    "degrade": {"train_crops_per_image": 4, "val_crops_per_image": 2, "shard_size": 5},
    "teacher": {
        "unet": {"model_channels": 16, "channel_mult": [1, 2], "num_res_blocks": 1, "attention_levels": [],
                 "num_head_channels": 8},
        "train": {"steps": 8, "batch_size": 4, "ckpt_every": 4, "log_every": 2, "num_workers": 0,
                  "shuffle_buffer": 8, "warmup_steps": 2},
    },
    "trajectories": {"batch_size": 3, "shard_size": 4},
    "distill": {
        "sample_every": 1000, "val_batch_size": 4,
        "tadsr": {"c_dim": 8},
        "colearn": {"disc_channels": 8, "disc_levels": 1, "c_dim": 8},
        "train": {"steps": 2, "batch_size": 2, "ckpt_every": 2, "log_every": 1, "num_workers": 0,
                  "shuffle_buffer": 4},
    },
    "osediff": {
        "small": {"vae_channels": [8, 8, 8, 8], "unet_channels": [8, 16], "attention_head_dim": 8,
                  "cross_attention_dim": 8, "text_layers": 1, "text_heads": 1, "text_intermediate_size": 8},
        "base_vae_steps": 2, "base_steps": 2,
        "train": {"steps": 2, "batch_size": 2, "ckpt_every": 2, "log_every": 1, "num_workers": 0,
                  "shuffle_buffer": 4},
    },
    "baseline": {"num_feat": 8, "num_conv": 2, "disc_feat": 8, "l1_steps": 1,
                 "train": {"steps": 2, "batch_size": 2, "ckpt_every": 2, "log_every": 1, "num_workers": 0,
                           "shuffle_buffer": 4}},
    "evaluate": {"heldout_crop": 64, "teacher_steps": [1], "max_val_samples": None, "latency_warmup": 0,
                 "latency_paper_side": 32, "latency_paper_repeats": 1,
                 "latency_repeats": 1, "grid_samples": 1},
    "package": {"max_psnr_drop_db": 1000.0},  # a few training steps: any student must qualify
}


@functools.cache
def default_params() -> Params:
    """The committed params.yaml (the embedded default), validated: tests take sections from it and change a few
    keys with `model_copy(update=...)`, so no test carries a third copy of the defaults."""
    return load_params(REPO / "params.yaml")


def v1_diffusion() -> DiffusionParams:
    """ResShift v1's schedule (T=15, κ=2, p=0.3, √η_1 0.02, √η_T 0.99), which the reference numbers of the tests
    come from; params.yaml keeps all of it but κ (0.5: docs/methods.md §7.1)."""
    return default_params().teacher.diffusion.model_copy(update={"kappa": 2.0})


def write_tiny_params(path: Path, **extra: dict) -> Path:
    params = merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY)
    params = merge(params, extra)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run(cmd: list[str], cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def clone(root: Path) -> dict:
    """The working tree's tracked and unignored files, committed in a fresh git repo (what a user clones); returns
    the environment to run its commands in."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "TORCH_HOME": str(REPO / ".torch")}
    (root / ".torch").symlink_to(REPO / ".torch")  # the offline LPIPS/NIQE weights the stages are pointed at
    run(["git", "init", "-q"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "clone"], root, env)
    return env
