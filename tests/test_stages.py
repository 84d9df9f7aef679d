"""The stages in-process on a tiny params file: outputs, declared-vs-read params, determinism, kill and resume."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

import stages.degrade
import stages.distill
import stages.download
import stages.evaluate
import stages.latency
import stages.osediff
import stages.package
import stages.teacher
import stages.trajectories
from sr.config import open_params
from sr.data.shards import iter_samples, shard_paths
from tests.pipeline_fixtures import REPO, write_tiny_params

STAGES = [
    ("download", stages.download, ["--out", "data/raw"]),
    ("degrade", stages.degrade, ["--raw", "data/raw", "--out", "data/shards"]),
    ("teacher", stages.teacher, ["--shards", "data/shards", "--out", "models/teacher", "--work", "checkpoints/teacher",
                                 "--metrics", "metrics/teacher.json", "--curves", "plots/teacher.csv"]),
    ("trajectories", stages.trajectories, ["--teacher", "models/teacher", "--shards", "data/shards",
                                           "--out", "data/trajectories", "--work", "checkpoints/trajectories"]),
    *[(f"distill@{r}", stages.distill, ["--recipe", r, "--torch-home", str(REPO / ".torch")])
      for r in ("sinsr", "tadsr", "colearn")],
    ("osediff", stages.osediff, []),
    ("evaluate", stages.evaluate, ["--torch-home", str(REPO / ".torch")]),
    ("latency", stages.latency, []),
    ("package", stages.package, []),
]


def _sha(paths):
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Run every stage once in a temp folder, recording which params each one read."""
    root = tmp_path_factory.mktemp("pipeline")
    write_tiny_params(root / "params.yaml")
    reads = {}
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for name, module, args in STAGES:
            views = []

            def recording(path, keys, _views=views):
                view = open_params(path, keys)
                _views.append(view)
                return view

            module.open_params, original = recording, module.open_params
            try:
                assert module.main(["--params", "params.yaml", *args]) == 0
            finally:
                module.open_params = original
            reads[name] = views[0].read
    finally:
        os.chdir(cwd)
    return root, reads


@pytest.mark.parametrize("name, module", [(n, m) for n, m, _ in STAGES], ids=[n for n, _, _ in STAGES])
def test_each_stage_reads_exactly_what_it_declares(pipeline, name, module):
    _, reads = pipeline
    assert reads[name] == set(module.PARAMS)


def test_download_and_degrade_outputs(pipeline):
    root, _ = pipeline
    manifest = [json.loads(line) for line in (root / "data/raw/manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 5 and {m["split"] for m in manifest} == {"train", "val"}
    n_val = sum(m["split"] == "val" for m in manifest)
    train = list(iter_samples(shard_paths(root / "data/shards", "train")))
    val = list(iter_samples(shard_paths(root / "data/shards", "val")))
    assert len(train) == 4 * (5 - n_val) and len(val) == 2 * n_val
    assert train[0]["hq"].shape == (3, 64, 64) and train[0]["lq"].shape == (3, 16, 16)
    assert val[0]["lq_bicubic"].shape == (3, 16, 16)
    assert {"seed", "crop", "degradation"} <= set(train[0]["json"])
    val_ids = {m["id"] for m in manifest if m["split"] == "val"}
    assert not {s["json"]["image_id"] for s in train} & val_ids  # no crop of a val image reaches train


def test_degrade_is_byte_identical_on_rerun(pipeline, tmp_path):
    root, _ = pipeline
    assert stages.degrade.main(["--params", str(root / "params.yaml"), "--raw", str(root / "data/raw"),
                                "--out", str(tmp_path / "shards")]) == 0
    names = sorted(p.name for p in (root / "data/shards").glob("*.tar"))
    assert sorted(p.name for p in (tmp_path / "shards").glob("*.tar")) == names
    assert _sha([tmp_path / "shards" / n for n in names]) == _sha([root / "data/shards" / n for n in names])


def test_teacher_and_trajectories_outputs(pipeline):
    root, _ = pipeline
    assert {"config.json", "model.safetensors"} <= {p.name for p in (root / "models/teacher").iterdir()}
    metrics = json.loads((root / "metrics/teacher.json").read_text())
    assert metrics["psnr_y_gain_db"] == pytest.approx(metrics["psnr_y_teacher"] - metrics["psnr_y_bicubic"], abs=1e-3)
    curve = (root / "plots/teacher.csv").read_text().splitlines()
    assert curve[0] == "step,loss,lr" and [int(r.split(",")[0]) for r in curve[1:]] == [2, 4, 6, 8]
    cached = list(iter_samples(shard_paths(root / "data/trajectories", "traj")))
    train = list(iter_samples(shard_paths(root / "data/shards", "train")))
    assert [c["key"] for c in cached] == [t["key"] for t in train]
    assert cached[0]["x0"].shape == cached[0]["y"].shape == (48, 16, 16)
    assert {"noise_seed", "steps"} <= set(cached[0]["json"])
    assert not (root / "checkpoints/trajectories").exists() or not any((root / "checkpoints/trajectories").iterdir())


def _teacher_cmd(root):
    return [sys.executable, "-m", "stages.teacher", "--params", "params.yaml", "--shards", "data/shards",
            "--out", "models/t2", "--work", "ck", "--metrics", "m.json", "--curves", "c.csv"]


def test_teacher_resumes_after_kill_9_with_identical_weights(pipeline, tmp_path):
    root, _ = pipeline
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    write_tiny_params(tmp_path / "params.yaml", teacher={"train": {"steps": 120, "ckpt_every": 10}})
    os.symlink(root / "data", tmp_path / "data")
    proc = subprocess.Popen(_teacher_cmd(tmp_path), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("ck/*/step-00000020")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "models/t2").exists()
    resumed = subprocess.run(_teacher_cmd(tmp_path), cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "teacher: resumed from checkpoint at step" in resumed.stdout
    step = int(resumed.stdout.split("resumed from checkpoint at step ")[1].split()[0])
    assert 20 <= step < 120
    straight_dir = tmp_path / "straight"
    straight_dir.mkdir()
    (straight_dir / "params.yaml").write_text((tmp_path / "params.yaml").read_text())
    os.symlink(root / "data", straight_dir / "data")
    straight = subprocess.run(
        _teacher_cmd(straight_dir), cwd=straight_dir, env=env, capture_output=True, text=True, check=False
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    a = load_file(str(tmp_path / "models/t2/model.safetensors"))
    b = load_file(str(straight_dir / "models/t2/model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_downstream_stages_write_their_outputs(pipeline):
    root, _ = pipeline
    for recipe in ("sinsr", "tadsr", "colearn"):
        assert (root / f"models/student-{recipe}/model.safetensors").exists()
        metrics = json.loads((root / f"metrics/train-{recipe}.json").read_text())
        assert {"psnr_y_student", "psnr_y_teacher", "psnr_y_bicubic"} <= set(metrics)
    assert (root / "models/student-osediff/lora.safetensors").exists()
    report = json.loads((root / "metrics/eval.json").read_text())
    assert {"bicubic", "teacher-15", "student-sinsr", "student-tadsr", "student-colearn", "student-osediff"} <= set(report)
    assert report["student-sinsr"]["cost"]["nfe"] == 1 and report["teacher-15"]["cost"]["nfe"] == 15
    latency = json.loads((root / "metrics/latency.json").read_text())
    assert set(report) == set(latency) and latency["teacher-15"]["speedup_vs_teacher"] == 1.0
    timed = latency["_info"]["latency_input"]  # the first sample of the focus dataset (64 px HQ held-out crops)
    assert timed["dataset"] == report["_info"]["focus_dataset"] == "heldout-realesrgan"
    assert timed["lq_shape"] == [3, 16, 16]
    assert list((root / "dist").glob("sr-onestep-*.tar.gz"))
