"""A tiny version of the embedded default: same stages, same code, seconds instead of minutes."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
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


# The tiny teacher samples in 4 steps instead of 15: the teacher-15 row dominates the evaluate stage on 2 cores.
FEWER_STEPS = {"teacher": {"diffusion": {"steps": 4}}, "evaluate": {"max_val_samples": 2}}
# dvc.yaml order, topologically sorted: osediff only needs the shards but is listed last, so it runs after distill.
STAGES = ["download", "degrade", "teacher", "trajectories", "distill@sinsr", "distill@tadsr", "distill@colearn",
          "baseline", "osediff", "evaluate", "latency", "package"]


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


def tool_env() -> dict:
    """This process's environment (as it is now: S3 fixtures set AWS_*) for git, dvc and the stages: the venv's
    python first on PATH, a git identity, the offline metric weights."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t", "TORCH_HOME": str(REPO / ".torch")}


def clone(root: Path) -> dict:
    """The working tree's tracked and unignored files, committed in a fresh git repo (what a user clones), with the
    offline LPIPS/NIQE weights the stages are pointed at linked in; returns the environment to run its commands in."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    (root / ".torch").symlink_to(REPO / ".torch")
    env = tool_env()
    run(["git", "init", "-q"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "clone"], root, env)
    return env


def tiny_clone(root: Path, bucket: str) -> dict:
    """`clone`, then the tiny params (FEWER_STEPS) and an S3 DVC remote, committed: what the session's tiny build and
    the workers' origin both start from, so their dvc.lock hashes compare."""
    env = clone(root)
    write_tiny_params(root / "params.yaml", **FEWER_STEPS)
    run(["dvc", "remote", "add", "-d", "store", f"s3://{bucket}/dvc"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "tiny params, S3 remote"], root, env)
    return env


def task_states(flow_run_id) -> dict[str, str]:
    """{task run name: state name} of a flow run, read from the Prefect server of the current settings."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name: run.state.name for run in runs}


@dataclass
class TinyBuild:
    """The tiny pipeline (FEWER_STEPS), built by the Prefect flow with every stage in the flow's own process."""

    root: Path  # the clone, committed before the build; its DVC remote is s3://{bucket}/dvc
    env: dict
    bucket: str
    completed: bool
    message: str
    result: dict | None  # the flow's {stage: final state}, when it completed
    tasks: dict[str, str]  # its task runs' states
    seconds: float


def build_tiny_pipeline(root: Path, bucket: str) -> TinyBuild:
    """`tiny_clone` (its S3 remote found through AWS_* of the caller's environment), then the flow with `push=True`
    against a throwaway Prefect server."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.pipeline import sr_pipeline

    env = tiny_clone(root, bucket)
    with prefect_test_harness(server_startup_timeout=60):
        start = time.monotonic()
        state = sr_pipeline(repo=str(root), push=True, return_state=True)
        seconds = time.monotonic() - start
        tasks = task_states(state.state_details.flow_run_id)
        result = state.result() if state.is_completed() else None
    return TinyBuild(root, env, bucket, state.is_completed(), str(state.message), result, tasks, seconds)
