"""The stages in-process on a tiny params file: outputs, declared-vs-read params, determinism, kill and resume."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from safetensors.torch import load_file

import stages.baseline
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
from sr.config.base import Section
from sr.data.shards import iter_samples, shard_paths
from sr.models.autoencoder import PixelUnshuffleRefine
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
    ("baseline", stages.baseline, ["--torch-home", str(REPO / ".torch")]),
    ("evaluate", stages.evaluate, ["--torch-home", str(REPO / ".torch")]),
    ("latency", stages.latency, []),
    ("package", stages.package, []),
]
# Keys that only another choice reads (the embedded default takes the branch that does not), each with the reason.
READ_ONLY_BY_OTHER_CHOICES = {
    "teacher.autoencoder.checkpoint": "only vq_f4 and kl autoencoders have weights",
    "distill.image.lpips_net": "only an LPIPS image term (lambda_lpips > 0) needs a network",
    # random branches: read when a crop's seeded draws take them; the tiny run's few Real-ESRGAN crops do not
    "degrade.blur2.betap_range": "only a plateau kernel in the second blur draws a shape",
    "degrade.stage2.poisson_scale_range": "only Poisson noise in the second stage draws a scale",
}


def _sha(paths):
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def _declared(name: str, module) -> list[str]:
    return module.params(name.split("@")[1]) if "@" in name else module.PARAMS


def _paths(section, prefix: str, out: dict[int, str]) -> dict[int, str]:
    """id of every params section object -> its dotted path, so a field read can be named."""
    out[id(section)] = prefix
    for field in type(section).model_fields:
        value = object.__getattribute__(section, field)
        if isinstance(value, Section):
            _paths(value, f"{prefix}{field}.", out)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Section):
                    _paths(item, f"{prefix}{field}.", out)
    return out


def _leaves(data: dict, prefix: str = "") -> set[str]:
    found = set()
    for key, value in data.items():
        found |= _leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"}
    return found


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Run every stage once in a temp folder, recording which declared keys each reads, and every leaf any of them
    reads (a field of a params section, read by library code once the file is loaded)."""
    root = tmp_path_factory.mktemp("pipeline")
    write_tiny_params(root / "params.yaml")
    reads, leaves, where = {}, set(), {}

    def record(self, name):
        value = object.__getattribute__(self, name)
        path = where.get(id(self))
        if path is not None and name in type(self).model_fields:
            leaves.add(path + name)
        return value

    cwd = os.getcwd()
    os.chdir(root)
    Section.__getattribute__ = record
    try:
        for name, module, args in STAGES:
            views = []

            def recording(path, keys, _views=views):
                view = open_params(path, keys)
                where.clear()
                where.update(_paths(object.__getattribute__(view, "_params"), "", {}))
                _views.append(view)
                return view

            module.open_params, original = recording, module.open_params
            try:
                assert module.main(["--params", "params.yaml", *args]) == 0
            finally:
                module.open_params = original
                where.clear()
            reads[name] = views[0].read
    finally:
        del Section.__getattribute__
        os.chdir(cwd)
    return root, reads, leaves


@pytest.mark.parametrize("name, module", [(n, m) for n, m, _ in STAGES], ids=[n for n, _, _ in STAGES])
def test_each_stage_reads_exactly_what_it_declares(pipeline, name, module):
    _, reads, _ = pipeline
    assert reads[name] == set(_declared(name, module))


def test_every_param_in_params_yaml_is_read_by_some_stage(pipeline):
    _, _, leaves = pipeline
    templated = {"distill.recipes"}  # dvc.yaml's foreach reads it too
    declared = _leaves(yaml.safe_load((REPO / "params.yaml").read_text()))
    unread = declared - leaves - templated - set(READ_ONLY_BY_OTHER_CHOICES)
    assert not unread, f"params nobody reads: {sorted(unread)}"
    read_anyway = set(READ_ONLY_BY_OTHER_CHOICES) & leaves
    assert not read_anyway, f"exemptions read after all, drop them: {sorted(read_anyway)}"


def test_download_and_degrade_outputs(pipeline):
    root = pipeline[0]
    manifest = [json.loads(line) for line in (root / "data/raw/manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 5 and {m["split"] for m in manifest} == {"train", "val"}
    n_val = sum(m["split"] == "val" for m in manifest)
    train = list(iter_samples(shard_paths(root / "data/shards", "train")))
    val = list(iter_samples(shard_paths(root / "data/shards", "val")))
    assert len(train) == 4 * (5 - n_val) and len(val) == 2 * n_val
    assert train[0]["hq"].shape == (3, 64, 64) and train[0]["lq"].shape == (3, 16, 16)
    assert set(val[0]) == {"key", "hq", "lq", "json"}  # nothing written that nothing reads
    assert {"seed", "crop", "degradation"} <= set(train[0]["json"])
    val_ids = {m["id"] for m in manifest if m["split"] == "val"}
    assert not {s["json"]["image_id"] for s in train} & val_ids  # no crop of a val image reaches train


def test_degrade_is_byte_identical_on_rerun(pipeline, tmp_path):
    root = pipeline[0]
    assert stages.degrade.main(["--params", str(root / "params.yaml"), "--raw", str(root / "data/raw"),
                                "--out", str(tmp_path / "shards")]) == 0
    names = sorted(p.name for p in (root / "data/shards").glob("*.tar"))
    assert sorted(p.name for p in (tmp_path / "shards").glob("*.tar")) == names
    assert _sha([tmp_path / "shards" / n for n in names]) == _sha([root / "data/shards" / n for n in names])


def test_teacher_and_trajectories_outputs(pipeline):
    root = pipeline[0]
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
    root = pipeline[0]
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


def test_downstream_stages_agree_on_the_numbers_they_share(pipeline):
    """Every stage scores val through the one validation routine: the same method on the same samples gives the same
    number in the teacher, distill, OSEDiff and evaluate reports."""
    root = pipeline[0]
    teacher = json.loads((root / "metrics/teacher.json").read_text())
    report = json.loads((root / "metrics/eval.json").read_text())
    assert teacher["val_samples"] == report["_info"]["datasets"]["val"]["images"] == 6
    assert report["bicubic"]["val"]["psnr_y"] == pytest.approx(teacher["psnr_y_bicubic"], abs=1e-4)
    assert report["teacher-15"]["val"]["psnr_y"] == pytest.approx(teacher["psnr_y_teacher"], abs=1e-4)
    for recipe in ("sinsr", "tadsr", "colearn"):
        train = json.loads((root / f"metrics/train-{recipe}.json").read_text())
        assert train["recipe"] == recipe and train["train_steps"] == 2 and train["val_samples"] == 6
        assert train["psnr_y_teacher"] == pytest.approx(teacher["psnr_y_teacher"], abs=1e-4)
        assert train["psnr_y_bicubic"] == pytest.approx(teacher["psnr_y_bicubic"], abs=1e-4)
        assert train["psnr_y_student"] == pytest.approx(report[f"student-{recipe}"]["val"]["psnr_y"], abs=1e-4)
        assert train["lpips_student"] == pytest.approx(report[f"student-{recipe}"]["val"]["lpips"], abs=1e-4)
    osediff = json.loads((root / "metrics/train-osediff.json").read_text())
    assert osediff["psnr_y_bicubic"] == pytest.approx(teacher["psnr_y_bicubic"], abs=1e-4)
    assert osediff["psnr_y_osediff"] == pytest.approx(report["student-osediff"]["val"]["psnr_y"], abs=1e-4)
    decoder = sum(q.numel() for q in PixelUnshuffleRefine(4).parameters())  # each student's own (refine_decoder)
    assert report["student-sinsr"]["cost"] == {"nfe": 1, "params": report["teacher-15"]["cost"]["params"] + decoder}
    assert report["teacher-15"]["cost"]["nfe"] == 15 and report["teacher-1-linspace"]["cost"]["nfe"] == 1
    baseline = json.loads((root / "metrics/train-baseline.json").read_text())
    assert baseline["psnr_y_bicubic"] == pytest.approx(teacher["psnr_y_bicubic"], abs=1e-4)
    assert baseline["psnr_y_model"] == pytest.approx(report["baseline-srvgg"]["val"]["psnr_y"], abs=1e-4)


def test_eval_rows_datasets_and_checks(pipeline):
    """Three held-out sets, chroma shift and blockiness for every method, each student also with the colour
    correction it does not ship, and the baseline as a peer; the package never picks a `+fix` row."""
    root = pipeline[0]
    report = json.loads((root / "metrics/eval.json").read_text())
    assert set(report["_info"]["datasets"]) == {"val", "heldout-realesrgan", "heldout-mild", "heldout-bicubic"}
    methods = sorted(m for m in report if not m.startswith("_"))
    assert methods == sorted(["bicubic", "teacher-15", "teacher-1-linspace", "baseline-srvgg",
                              *[f"student-{r}" for r in ("sinsr", "tadsr", "colearn", "osediff")],
                              *[f"student-{r}+wavelet" for r in ("sinsr", "tadsr", "colearn")], "student-osediff+none"])
    for m in methods:
        for dataset in report["_info"]["datasets"]:
            assert {"psnr_y", "lpips", "chroma", "blockiness"} <= set(report[m][dataset]), (m, dataset)
    assert report["bicubic"]["heldout-bicubic"]["blockiness"] == pytest.approx(1.0, abs=0.1)  # no grid of its own
    # the OSEDiff student ships the wavelet fix: its own row and the raw one differ, and only in colour mostly
    shipped, raw = report["student-osediff"]["heldout-mild"], report["student-osediff+none"]["heldout-mild"]
    assert shipped["chroma"] != raw["chroma"]
    selection = json.loads(next((root / "dist").glob("sr-onestep-*/selection.json")).read_text())
    assert "+" not in selection["student"] and selection["student"].startswith("student-")


def test_latency_times_what_evaluate_scored(pipeline):
    root = pipeline[0]
    report = json.loads((root / "metrics/eval.json").read_text())
    latency = json.loads((root / "metrics/latency.json").read_text())
    shipped = {m for m in report if "+" not in m}  # every method as it ships, the baseline too; not the +fix rows
    assert set(latency) == shipped and "baseline-srvgg" in latency and latency["teacher-15"]["speedup_vs_teacher"] == 1.0
    timed = latency["_info"]["latency_input"]  # the first sample of the focus dataset (64 px HQ held-out crops)
    assert timed["dataset"] == report["_info"]["focus_dataset"] == "heldout-realesrgan"
    assert timed["lq_shape"] == [3, 16, 16]


def test_package_ships_the_student_its_rule_picks(pipeline):
    root = pipeline[0]
    report = json.loads((root / "metrics/eval.json").read_text())
    selection = json.loads((root / "dist/sr-onestep-0.1.0/selection.json").read_text())
    students = [m for m in report if m.startswith("student-") and "+" not in m]
    best = min(students, key=lambda m: (report[m]["heldout-realesrgan"]["lpips"], m))  # every student qualifies
    assert selection["student"] == best and selection["value"] == report[best]["heldout-realesrgan"]["lpips"]
    config = json.loads((root / "dist/sr-onestep-0.1.0/config.json").read_text())
    assert config == json.loads((root / f"models/{best}/config.json").read_text())
    sums = (root / "dist/sr-onestep-0.1.0/SHA256SUMS").read_text()
    assert f"{_sha([root / 'dist/sr-onestep-0.1.0/selection.json'])[0]}  selection.json" in sums


def test_retrain_gate_reads_the_package_the_real_pipeline_built(pipeline):
    """The gate compares what the package stage chose, by the package's own rule, read from the real eval.json."""
    from flows.retrain import find_package, gate

    root = pipeline[0]
    tarball, version = find_package(root / "dist", "sr-onestep")
    candidate = json.loads((root / "dist" / f"sr-onestep-{version}" / "selection.json").read_text())
    report = json.loads((root / "metrics/eval.json").read_text())
    assert candidate["value"] == report[candidate["student"]][candidate["dataset"]][candidate["metric"]]
    worse = {**candidate, "student": "student-other", "value": candidate["value"] + 0.01}
    better = {**candidate, "student": "student-other", "value": candidate["value"] - 0.01}
    assert gate(candidate, ("0.0.9", worse))[0] is True
    assert gate(candidate, ("0.0.9", better))[0] is False
    assert gate(candidate, ("0.0.9", candidate))[0] is False  # equal is not an improvement
