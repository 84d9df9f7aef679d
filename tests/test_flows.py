"""The Prefect flows on a tiny self-made DVC project in a temp git repo: real `dvc`, real Prefect, real S3 (moto)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")  # stage output still reaches the API log
os.environ.setdefault("DO_NOT_TRACK", "1")

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.testing.utilities import prefect_test_harness

from flows.pipeline import evaluation_report, metrics_table, select_stages, sr_pipeline, stage_graph
from flows.placement import PlacementError, load_placement
from flows.retrain import RetrainParams, gate, retrain
from flows.retrain import main as retrain_main
from sr.publish import latest_version, publish
from sr.storage import list_s3

DVC = str(Path(sys.executable).with_name("dvc"))

# Stage commands say `python`, as in the real dvc.yaml: the flow puts this interpreter's venv first on PATH.
# download copies a file DVC does not track (like new objects under an s3:// source: only a forced download sees
# them); train is a foreach; evaluate reads a param; package writes the real package layout with a helper script.
DVC_YAML = """
stages:
  download:
    cmd: python -c "import shutil; shutil.copy('../source.txt', 'raw.txt')"
    outs: [raw.txt]
  train:
    foreach: [a, b]
    do:
      cmd: python -c "print('training ${item}'); open('model-${item}.txt', 'w').write(open('raw.txt').read() + '${item}')"
      deps: [raw.txt]
      outs: ["model-${item}.txt"]
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py, model-a.txt, model-b.txt]
    params: [evaluate.lpips]
    metrics: [metrics/eval.json]
  package:
    cmd: python package.py
    deps: [package.py, model-a.txt, metrics/eval.json]
    params: [package.version]
    outs: [dist]
"""

EVALUATE_PY = """
import json, os, yaml
lpips = yaml.safe_load(open("params.yaml"))["evaluate"]["lpips"]
os.makedirs("metrics", exist_ok=True)
json.dump({"student": {"val": {"lpips": lpips, "psnr": 30.5}}, "teacher": {"val": {"lpips": 0.1}}},
          open("metrics/eval.json", "w"))
"""

PACKAGE_PY = """
import hashlib, json, os, shutil, tarfile, yaml
version = yaml.safe_load(open("params.yaml"))["package"]["version"]
top = f"tiny-{version}"
os.makedirs(f"dist/{top}")
shutil.copy("model-a.txt", f"dist/{top}/model.txt")
shutil.copy("metrics/eval.json", f"dist/{top}/eval.json")
value = json.load(open("metrics/eval.json"))["student"]["val"]["lpips"]
json.dump({"name": "tiny", "version": version, "student": "student", "dataset": "val", "metric": "lpips",
           "value": value, "lower_is_better": True, "max_psnr_drop_db": 0.5}, open(f"dist/{top}/selection.json", "w"))
with open(f"dist/{top}/SHA256SUMS", "w") as f:
    for name in ["eval.json", "model.txt", "selection.json"]:
        f.write(hashlib.sha256(open(f"dist/{top}/{name}", "rb").read()).hexdigest() + "  " + name + "\\n")
with tarfile.open(f"dist/{top}.tar.gz", "w:gz") as tf:
    tf.add(f"dist/{top}", arcname=top)
"""


def set_params(repo: Path, lpips: float, version: str) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump({"evaluate": {"lpips": lpips}, "package": {"version": version}}))


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A fresh tiny DVC project (in `repo/`, with its source file and DVC remote beside it)."""
    root = tmp_path_factory.mktemp("template")
    repo = root / "repo"
    repo.mkdir()
    (root / "source.txt").write_text("photos-v1 ")
    (root / "remote").mkdir()
    for cmd in (["git", "init", "-q"], [DVC, "init", "-q"], [DVC, "remote", "add", "-q", "-d", "store", "../remote"]):
        subprocess.run(cmd, cwd=repo, check=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "evaluate.py").write_text(EVALUATE_PY)
    (repo / "package.py").write_text(PACKAGE_PY)
    set_params(repo, 0.3, "1.0.0")
    return repo


@pytest.fixture(scope="module")
def first_run(harness, template):
    """The pipeline run once on the template (the other tests start from copies of this built project)."""
    return sr_pipeline(repo=str(template), return_state=True)


@pytest.fixture
def repo(first_run, template, tmp_path) -> Path:
    shutil.copytree(template.parent, tmp_path / "project", symlinks=True)
    return tmp_path / "project" / "repo"


def task_states(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name: run.state.name for run in runs}


def latest_artifact(key: str) -> str:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return max(artifacts, key=lambda a: a.created).data


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


STAGES = ["download", "train@a", "train@b", "evaluate", "package"]


def test_pipeline_runs_every_stage_in_dag_order(first_run, template):
    assert first_run.is_completed()
    assert list(first_run.result()) == STAGES and set(first_run.result().values()) == {"Completed"}
    assert (template / "model-b.txt").read_text() == "photos-v1 b"
    assert json.loads((template / "metrics/eval.json").read_text())["student"]["val"]["lpips"] == 0.3
    assert (template / "dist" / "tiny-1.0.0.tar.gz").is_file()
    run_id = first_run.state_details.flow_run_id
    with get_client(sync_client=True) as client:  # stage output is streamed into the run's logs
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    assert "training a" in [log.message for log in logs]
    assert "| student | 0.3 | 30.5 |" in latest_artifact("sr-eval")


def test_rerun_skips_every_stage(repo):
    rerun = sr_pipeline(repo=str(repo), return_state=True)
    assert task_states(rerun.state_details.flow_run_id) == {stage: "Skipped" for stage in STAGES}


def test_failing_stage_fails_the_flow_with_its_output(repo):
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())
    stages["stages"]["train"]["do"]["cmd"] = "python -c \"print('loss is nan at step 7'); raise SystemExit(3)\""
    (repo / "dvc.yaml").write_text(yaml.safe_dump(stages))
    state = sr_pipeline(repo=str(repo), return_state=True)
    assert state.is_failed()
    with pytest.raises(RuntimeError, match=r"(?s)repro --single-item train@a.*failed.*loss is nan at step 7"):
        state.result()
    assert task_states(state.state_details.flow_run_id) == {"download": "Skipped", "train@a": "Failed"}


def test_select_stages_expands_foreach_names_and_rejects_unknown_ones():
    assert select_stages(STAGES, ["package", "train"]) == ["train@a", "train@b", "package"]
    assert select_stages(STAGES, ["train@b"]) == ["train@b"]
    with pytest.raises(ValueError, match="unknown stage 'trian'; dvc.yaml has: download, train@a, train@b, evaluate"):
        select_stages(STAGES, ["trian"])


def test_metrics_table_renders_nested_metrics():
    table = metrics_table({"sinsr": {"div2k": {"lpips": 0.21, "psnr": 24.5}}, "teacher": {"div2k": {"lpips": 0.2}}})
    assert table.splitlines() == [
        "| method | div2k/lpips | div2k/psnr |",
        "|---|---|---|",
        "| sinsr | 0.21 | 24.5 |",
        "| teacher | 0.2 |  |",
    ]


def test_evaluation_report_adds_latency_only_when_the_latency_stage_ran(tmp_path):
    assert evaluation_report(tmp_path) is None  # before the evaluate stage
    (tmp_path / "eval.json").write_text(json.dumps({"sinsr": {"val": {"lpips": 0.21}, "cost": {"nfe": 1}}}))
    assert metrics_table(evaluation_report(tmp_path)).splitlines()[2] == "| sinsr | 0.21 | 1 |"
    latency = {"sinsr": {"latency_s": 0.05, "speedup_vs_teacher": 14.5}, "_info": {"threads": 2}}
    (tmp_path / "latency.json").write_text(json.dumps(latency))
    table = metrics_table(evaluation_report(tmp_path)).splitlines()
    assert table[0] == "| method | val/lpips | cost/nfe | latency/latency_s | latency/speedup_vs_teacher |"
    assert table[2:] == ["| sinsr | 0.21 | 1 | 0.05 | 14.5 |"]


def retrain_params(repo: Path, prefix: str) -> RetrainParams:
    return RetrainParams(publish_prefix=prefix, package_name="tiny", repo=str(repo), s3_retries=2, s3_retry_delay_s=0)


def _record(value: float, metric: str = "lpips", lower: bool = True, student: str = "student-a") -> dict:
    return {"student": student, "dataset": "val", "metric": metric, "value": value, "lower_is_better": lower}


def test_gate_compares_the_packages_own_rule():
    assert gate(_record(0.5), None) == (True, "nothing published yet; candidate student-a lpips on val = 0.5")
    assert gate(_record(0.5), ("1.0", None))[0] is True  # a published version without selection.json
    psnr = _record(25.0, "psnr_y", lower=False)
    assert gate(psnr, ("1.0", _record(25.0, "psnr_y", False)))[0] is False
    assert gate(_record(25.5, "psnr_y", False), ("1.0", psnr))[0] is True
    promote, why = gate(_record(0.3), ("1.0", psnr))
    assert promote and why == ("published 1.0 was chosen by psnr_y on val, not comparable; candidate student-a lpips "
                               "on val = 0.3")
    assert gate(_record(0.2, student="student-b"), ("1.0", _record(0.3)))[1] == (
        "candidate student-b lpips on val = 0.2 is better than published 1.0 (student-a) = 0.3")


def test_promotion_gate_both_ways(repo, s3_bucket):
    prefix = f"s3://{s3_bucket}/models"
    publish(repo / "dist" / "tiny-1.0.0.tar.gz", prefix, "tiny", "1.0.0", repo / "dist/tiny-1.0.0/selection.json")
    params = retrain_params(repo, prefix)

    set_params(repo, 0.4, "1.1.0")  # worse LPIPS: kept
    outcome = retrain(params)
    assert outcome == (
        "kept the published model: candidate student lpips on val = 0.4 is not better than published 1.0.0 "
        "(student) = 0.3"
    )
    assert outcome in latest_artifact("sr-retrain")
    assert latest_version(prefix, "tiny") == "1.0.0"
    assert list_s3(f"{prefix}/tiny/1.1.0/") == []
    assert not any((repo.parent / "remote").iterdir())  # no dvc push for a rejected candidate

    (repo.parent / "source.txt").write_text("photos-v2 ")  # new source data: only the forced download sees it
    set_params(repo, 0.2, "1.2.0")
    outcome = retrain(params)
    assert outcome.startswith("published tiny@1.2.0: candidate student lpips on val = 0.2 is better")
    assert outcome in latest_artifact("sr-retrain")
    assert latest_version(prefix, "tiny") == "1.2.0"
    assert (repo / "model-a.txt").read_text() == "photos-v2 a"
    assert any(p.is_file() for p in (repo.parent / "remote").rglob("*"))  # dvc push ran


def test_s3_down_retries_then_fails_and_publishes_nothing(repo, s3_bucket, s3_env, monkeypatch):
    prefix = f"s3://{s3_bucket}/models"
    publish(repo / "dist" / "tiny-1.0.0.tar.gz", prefix, "tiny", "1.0.0", repo / "dist/tiny-1.0.0/selection.json")
    before = list_s3(prefix + "/")

    closed = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    state = retrain(retrain_params(repo, prefix), return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match=f"S3 endpoint {closed} is unreachable"):
        state.result()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert [r.run_count for r in runs if r.name.startswith("published_selection")] == [3]  # first try + 2 retries

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_env)
    assert list_s3(prefix + "/") == before


def test_serve_cli_builds_a_valid_deployment(monkeypatch, tmp_path):
    calls = {}
    monkeypatch.setattr(type(retrain), "serve", lambda self, **kw: calls.update(kw))
    (tmp_path / "p.json").write_text(json.dumps({"package_name": "tiny", "dist_dir": "out"}))
    retrain_main(["--cron", "0 4 * * *", "--params", str(tmp_path / "p.json"), "--prefix", "s3://b/models"])
    assert calls["cron"] == "0 4 * * *" and calls["global_limit"] == 1 and calls["limit"] == 1
    assert RetrainParams(**calls["parameters"]["params"]).dist_dir == "out"
    deployment = retrain.to_deployment(name="sr-retrain", parameters=calls["parameters"], concurrency_limit=1)
    assert deployment.parameters["params"]["publish_prefix"] == "s3://b/models"


def test_placement_hands_the_process_count_to_a_local_stage(repo):
    """A placement entry without a pool keeps the stage here and sets SR_PROCESSES for its launch; the table is no
    DVC input, so the other stages stay up to date."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())
    stages["stages"]["download"]["cmd"] = ("python -c \"import os; open('raw.txt', 'w').write("
                                           "os.environ.get('SR_PROCESSES', 'unset'))\"")
    (repo / "dvc.yaml").write_text(yaml.safe_dump(stages))
    (repo / "placement.yaml").write_text("stages:\n  download: {processes: 3}\n")
    state = sr_pipeline(stages=["download"], repo=str(repo), placement="placement.yaml", return_state=True)
    assert state.is_completed(), state.message
    assert (repo / "raw.txt").read_text() == "3"
    assert task_states(state.state_details.flow_run_id) == {"download": "Completed"}


def test_placement_errors_are_one_line(repo):
    (repo / "placement.yaml").write_text("stages:\n  trian: {pool: gpu}\n")
    state = sr_pipeline(repo=str(repo), placement="placement.yaml", return_state=True)
    with pytest.raises(PlacementError) as err:
        state.result()
    assert str(err.value) == "placement.yaml: stages.trian: no such stage; dvc.yaml has: " + ", ".join(STAGES)


@pytest.mark.parametrize(("text", "message"), [
    ("stages:\n  teacher: {pool: gpu, procs: 2}\n", "stages.teacher.procs: Extra inputs are not permitted (got 2)"),
    ("stages:\n  teacher: {processes: 0}\n",
     "stages.teacher.processes: Input should be greater than or equal to 1 (got 0)"),
    ("worker_wait_s: soon\n", ("worker_wait_s: Input should be a valid number, unable to parse string as a number "
                                "(got 'soon')")),
    ("stages: [teacher\n", "not YAML: while parsing a flow sequence"),
    ("git_url: https://me:s3cret@git.example.com/sr.git\n",
     "git_url: Value error, a URL with credentials in it; give workers an SSH key or a git credential helper instead"),
])
def test_placement_file_is_validated(tmp_path, text, message):
    path = tmp_path / "placement.yaml"
    path.write_text(text)
    with pytest.raises(PlacementError) as err:
        load_placement(path)
    assert str(err.value) == f"{path}: {message}"


def test_placement_finds_foreach_items():
    table = load_placement(None)
    assert table.stages == {} and table.pool("teacher") is None
    table = table.model_validate({"stages": {"distill": {"pool": "gpu"}, "distill@tadsr": {"pool": "big"}}})
    assert [table.pool(s) for s in ("distill@sinsr", "distill@tadsr", "teacher")] == ["gpu", "big", None]


def test_shipped_placement_names_real_stages():
    """flows/placement-gpu.yaml, the README's example, fits the real dvc.yaml: the GPU stages on `gpu`, data on `cpu`."""
    repo = Path(__file__).resolve().parents[1]
    table = load_placement(repo / "flows/placement-gpu.yaml")
    table.check_stages("flows/placement-gpu.yaml", stage_graph(repo)[0])
    assert [table.pool(s) for s in ("teacher", "distill@tadsr", "baseline", "osediff", "degrade", "package")] == [
        "gpu", "gpu", "gpu", "gpu", "cpu", "cpu"]
