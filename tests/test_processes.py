"""Every trainer as 2 processes (SR_PROCESSES=2: torchrun, gloo on CPU) against 1 process on the same global batch:
the same weights and curves, only rank 0 writes, and a killed launcher resumes to the uninterrupted result. Every
trainer and the trajectory cache under bf16 autocast on CPU; fp16 without CUDA refused at once."""

from __future__ import annotations

import csv
import importlib
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.torch import load_file

import stages.degrade
import stages.download
import stages.teacher
import stages.trajectories
from sr.data.shards import iter_samples
from sr.train.trajectories import trajectory_shards
from tests.pipeline_fixtures import REPO, write_tiny_params

STEPS, CKPT_EVERY = 12, 3
TRAIN = {"train": {"steps": STEPS, "ckpt_every": CKPT_EVERY, "log_every": 1}}
# The stage, its arguments and the file of trained weights, per trainer.
TRAINERS = {
    "teacher": (["stages.teacher", "--shards", "data/shards"], "model.safetensors"),
    **{f"distill@{r}": (["stages.distill", "--recipe", r, "--torch-home", str(REPO / ".torch")], "model.safetensors")
       for r in ("sinsr", "tadsr", "colearn")},
    "osediff": (["stages.osediff", "--shards", "data/shards"], "lora.safetensors"),
    "baseline": (["stages.baseline", "--shards", "data/shards", "--torch-home", str(REPO / ".torch")],
                 "model.safetensors"),
}
REGRESSION_TERM = {"teacher": "loss", "distill@sinsr": "distill", "distill@tadsr": "mse", "distill@colearn": "distill",
                   "osediff": "l2", "baseline": "l1"}
# Logs (rank, destination) of every rename: all our outputs are written to a temp name, then renamed into place.
SITECUSTOMIZE = """
import os
if os.environ.get("SR_TEST_WRITE_LOG"):
    def _logged(original):
        def rename(src, dst, *args, **kwargs):
            with open(os.environ["SR_TEST_WRITE_LOG"], "a") as log:
                log.write(f"{os.environ.get('RANK', '-')} {os.fspath(dst)}\\n")
            return original(src, dst, *args, **kwargs)
        return rename
    os.replace, os.rename = _logged(os.replace), _logged(os.rename)
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Shards, a tiny teacher and its trajectories, built once in-process."""
    root = tmp_path_factory.mktemp("processes")
    write_tiny_params(root / "params.yaml")
    (root / "site").mkdir()
    (root / "site/sitecustomize.py").write_text(SITECUSTOMIZE)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for module, args in ((stages.download, ["--out", "data/raw"]),
                             (stages.degrade, ["--raw", "data/raw", "--out", "data/shards"]),
                             (stages.teacher, []), (stages.trajectories, [])):
            assert module.main(["--params", "params.yaml", *args]) == 0
    finally:
        os.chdir(cwd)
    return root


def _section(trainer: str) -> str:
    return trainer.split("@")[0]  # distill@sinsr -> distill


def _run_dir(data: Path, folder: Path, trainer: str) -> Path:
    folder.mkdir()
    extra = {"lambda_lpips": 0.0} if trainer in ("osediff", "baseline") else {}  # see test_two_processes_train_...
    write_tiny_params(folder / "params.yaml", **{_section(trainer): {**TRAIN, **extra}})
    (folder / "data").symlink_to(data / "data")
    (folder / "models").mkdir()
    (folder / "models/teacher").symlink_to(data / "models/teacher")
    return folder


def _command(trainer: str) -> list[str]:
    module, *args = TRAINERS[trainer][0]
    return [sys.executable, "-m", module, "--params", "params.yaml", *args, "--out", "out", "--work", "work",
            "--metrics", "metrics.json", "--curves", "curves.csv"]


def _env(data: Path, processes: int, folder: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{data / 'site'}{os.pathsep}{REPO}", "SR_PROCESSES": str(processes),
            "SR_THREADS": "2", "SR_TEST_WRITE_LOG": str(folder / "writes.log")}


def _train(data: Path, folder: Path, trainer: str, processes: int) -> subprocess.CompletedProcess:
    done = subprocess.run(_command(trainer), cwd=folder, env=_env(data, processes, folder), capture_output=True,
                          text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _train_here(folder: Path, trainer: str) -> None:
    """One process, in this one: the reference (and no interpreter start-up to pay)."""
    module, *args = _command(trainer)[2:]
    cwd = os.getcwd()
    os.chdir(folder)
    # accelerate keeps one state per process; a stage is a process of its own, so only here can the precision of
    # the previous run linger (resetting is how accelerate's own tests do it)
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        assert importlib.import_module(module).main(args) == 0
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        os.chdir(cwd)


def _weights(folder: Path, trainer: str) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "out" / TRAINERS[trainer][1]))


def _curves(folder: Path) -> list[dict[str, float]]:
    with (folder / "curves.csv").open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _processes_in(folder: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if Path(proc.cwd()) == folder:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_two_processes_train_what_one_trains(data, tmp_path, trainer):
    """OSEDiff and the GAN baseline run without their LPIPS term here: LPIPS unit-normalises VGG features, and where
    a feature vector is near zero that amplifies float rounding (1 vs 2 threads of one process differ by ~1e-3 in its
    gradients too), which Adam's first steps turn into whole-step differences. Everything else of the trainer runs as
    configured."""
    _train_here(_run_dir(data, tmp_path / "one", trainer), trainer)
    two = _train(data, _run_dir(data, tmp_path / "two", trainer), trainer, 2)
    a, b = _weights(tmp_path / "one", trainer), _weights(tmp_path / "two", trainer)
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-4, f"{trainer}: 2 processes differ from 1 by {worst}"
    rows_a, rows_b = _curves(tmp_path / "one"), _curves(tmp_path / "two")
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b] == list(range(1, STEPS + 1))
    # Each process logs the mean over the global batch. Only step 1 is compared: after it, the float rounding of
    # gradients that are zero in exact arithmetic (a conv bias before GroupNorm) becomes ±lr steps under Adam, and
    # an adversarial loss drifts by a few % while the student stays within 1e-4.
    assert rows_a[0] == pytest.approx(rows_b[0], rel=1e-5, abs=1e-7)

    # Only rank 0 wrote: the model folder, every checkpoint, the curves and the metrics.
    writes = [line.split(" ", 1) for line in (tmp_path / "two/writes.log").read_text().splitlines()]
    assert {rank for rank, _ in writes} == {"0"}, writes
    written = {Path(dst).name for _, dst in writes}
    assert {"out", "curves.csv", "metrics.json"} <= written
    assert {f"step-{s:08d}" for s in range(CKPT_EVERY, STEPS + 1, CKPT_EVERY)} <= written
    assert "resumed from checkpoint" not in two.stdout

    # kill -9 of the launcher mid-run: its workers die with it, nothing is published, the rerun resumes and ends
    # where the uninterrupted 2-process run ended.
    folder = _run_dir(data, tmp_path / "killed", trainer)
    proc = subprocess.Popen(_command(trainer), cwd=folder, env=_env(data, 2, folder), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(folder.glob(f"work/*/step-{CKPT_EVERY:08d}")) and time.monotonic() < deadline:
        assert proc.poll() is None, f"{trainer} ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while _processes_in(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_in(folder), "workers outlived their killed launcher"
    assert not (folder / "out").exists()
    resumed = _train(data, folder, trainer, 2)
    step = int(resumed.stdout.split("resumed from checkpoint at step ")[1].split()[0])
    assert CKPT_EVERY <= step < STEPS
    c = _weights(folder, trainer)
    assert all(torch.equal(b[k], c[k]) for k in b), f"{trainer}: the resumed run differs from the uninterrupted one"


@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_bf16_autocast_trains_on_cpu_and_saves_fp32(data, tmp_path, trainer):
    section = _section(trainer)
    runs = {}
    for precision in ("no", "bf16"):
        folder = _run_dir(data, tmp_path / precision, trainer)
        train = {"steps": 3, "ckpt_every": 3, "log_every": 1, "mixed_precision": precision}
        write_tiny_params(folder / "params.yaml", **{section: {"train": train}})
        _train_here(folder, trainer)
        runs[precision] = _curves(folder)
    rows = runs["bf16"]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(math.isfinite(v) for r in rows for v in r.values())
    # Its regression term at step 1 (same weights, same batch): bf16 ran, on the same computation. (TAD-SR's HSD, a
    # difference of two teacher predictions, moves by ~20% in bf16, so the total is not compared.)
    column = REGRESSION_TERM[trainer]
    first, reference = rows[0][column], runs["no"][0][column]
    assert first != reference and first == pytest.approx(reference, rel=0.05)
    weights = _weights(folder, trainer)
    assert {w.dtype for w in weights.values()} == {torch.float32}
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_bf16_trajectories_match_fp32_to_bf16_precision(data, tmp_path):
    write_tiny_params(tmp_path / "params.yaml", trajectories={"mixed_precision": "bf16"})
    (tmp_path / "data").mkdir()
    (tmp_path / "data/shards").symlink_to(data / "data/shards")
    (tmp_path / "models").mkdir()
    (tmp_path / "models/teacher").symlink_to(data / "models/teacher")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert stages.trajectories.main(["--params", "params.yaml"]) == 0
    finally:
        os.chdir(cwd)
    fp32 = {s["key"]: s for s in iter_samples(trajectory_shards(data / "data/trajectories"))}
    bf16 = {s["key"]: s for s in iter_samples(trajectory_shards(tmp_path / "data/trajectories"))}
    assert fp32.keys() == bf16.keys() and len(fp32) == 8
    for key, s in bf16.items():
        assert s["x0"].dtype == torch.float32 and torch.isfinite(s["x0"]).all()
        error = (s["x0"] - fp32[key]["x0"]).abs().max().item()
        assert 0 < error < 0.1 * fp32[key]["x0"].abs().max().item(), key  # bf16 ran, and stayed close


def test_fp16_without_cuda_fails_at_once_with_one_line(data, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: fp16 is valid here")
    folder = _run_dir(data, tmp_path / "fp16", "teacher")
    write_tiny_params(folder / "params.yaml", teacher={"train": {"mixed_precision": "fp16"}})
    done = subprocess.run(_command("teacher"), cwd=folder, env=_env(data, 1, folder), capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("error: teacher: train.mixed_precision fp16 needs a CUDA device; "
                                                    "this machine has none (use bf16 or no)")
    assert not (folder / "work").exists()  # before anything was trained or written
