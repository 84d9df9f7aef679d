"""The Prefect flows on the REAL dvc.yaml (tiny params) in a temp git clone: every stage built by the flow, a no-op
rerun, `dvc push` to a real S3 server (moto) and `dvc repro --pull` in a second clone, and a served retrain
deployment triggered with `prefect deployment run` against a Prefect server started here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("DO_NOT_TRACK", "1")

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.testing.utilities import prefect_test_harness

from flows.pipeline import sr_pipeline
from sr.publish import latest_version
from sr.storage import read_s3_bytes
from tests.conftest import free_port
from tests.pipeline_fixtures import REPO, write_tiny_params

BIN = Path(sys.executable).parent
# dvc.yaml order, topologically sorted: osediff only needs the shards but is listed last, so it runs after distill.
STAGES = ["download", "degrade", "teacher", "trajectories", "distill@sinsr", "distill@tadsr", "distill@colearn",
          "baseline", "osediff", "evaluate", "latency", "package"]
# The tiny teacher samples in 4 steps instead of 15: the teacher-15 row dominates the evaluate stage on 2 cores.
FEWER_STEPS = {"teacher": {"diffusion": {"steps": 4}}, "evaluate": {"max_val_samples": 2}}


def run(cmd: list[str], cwd: Path, timeout: float = 300) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="module")
def clone(tmp_path_factory, s3) -> Path:
    """The working tree's tracked and unignored files, tiny params, an S3 DVC remote; committed in a fresh repo."""
    root = tmp_path_factory.mktemp("pipeline") / "a"
    files = run(["git", "ls-files", "-co", "--exclude-standard"], REPO).split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    (root / ".torch").symlink_to(REPO / ".torch")  # offline LPIPS weights, provisioned once per checkout
    write_tiny_params(root / "params.yaml", **FEWER_STEPS)
    run(["git", "init", "-q"], root)
    run(["dvc", "remote", "add", "-d", "store", f"s3://{s3}/dvc"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "clone"], root)
    return root


@pytest.fixture(scope="module")
def first_run(harness, clone):
    start = time.monotonic()
    state = sr_pipeline(repo=str(clone), push=True, return_state=True)
    print(f"first run: {time.monotonic() - start:.1f} s")
    return state


def task_states(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name: run.state.name for run in runs}


def test_flow_builds_every_stage_of_the_real_pipeline(first_run, clone):
    assert first_run.is_completed(), first_run.message
    assert first_run.result() == {stage: "Completed" for stage in STAGES}
    assert list(first_run.result()) == STAGES
    stages = {stage: "Completed" for stage in STAGES} | {"dvc-push": "Completed"}
    assert task_states(first_run.state_details.flow_run_id) == stages
    assert set(yaml.safe_load((clone / "dvc.lock").read_text())["stages"]) == set(STAGES)
    report = json.loads((clone / "metrics/eval.json").read_text())
    assert {f"student-{s}" for s in ["sinsr", "tadsr", "colearn", "osediff"]} <= set(report)
    assert (clone / "dist/sr-onestep-0.1.0.tar.gz").is_file()


def test_rerun_skips_every_stage_quickly(first_run, clone):
    start = time.monotonic()
    rerun = sr_pipeline(repo=str(clone), return_state=True)
    elapsed = time.monotonic() - start
    assert rerun.is_completed()
    assert task_states(rerun.state_details.flow_run_id) == {stage: "Skipped" for stage in STAGES}
    assert elapsed < 30, f"a no-op rerun took {elapsed:.1f} s"


def test_fresh_clone_pulls_everything_and_runs_no_stage(first_run, clone, tmp_path, s3):
    run(["git", "add", "-A"], clone)  # dvc.lock, the metrics and the .gitignore files dvc wrote
    run(["git", "commit", "-qm", "built"], clone)
    second = tmp_path / "b"
    run(["git", "clone", "-q", str(clone), str(second)], tmp_path)
    assert not (second / "models").exists()
    out = run(["dvc", "repro", "--pull"], second)
    assert "Running stage" not in out, out
    assert "Pulling data for stage: 'package'" in out
    assert run(["dvc", "status"], second).strip().endswith("Data and pipelines are up to date.")
    built = (clone / "dist/sr-onestep-0.1.0.tar.gz").read_bytes()
    assert (second / "dist/sr-onestep-0.1.0.tar.gz").read_bytes() == built
    assert (second / "models/teacher/model.safetensors").is_file()


def get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError):
        return None


def wait_for(what: str, probe, proc: subprocess.Popen, log: Path, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if (value := probe()) is not None:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not ready within {timeout} s:\n{log.read_text()[-3000:]}")


def test_served_retrain_deployment_runs_when_triggered(first_run, clone, tmp_path, s3):
    """`python -m flows.retrain` serves the deployment; `prefect deployment run` triggers it; the run completes and
    publishes the package (nothing was published before, and a forced download of the same photos changes nothing)."""
    api = f"http://127.0.0.1:{free_port()}/api"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_API_URL": api, "DVC_NO_ANALYTICS": "1"}
    prefix = f"s3://{s3}/models"
    (tmp_path / "retrain.json").write_text(json.dumps({"publish_prefix": prefix, "repo": str(clone)}))
    procs = []
    try:
        port = api.split(":")[-1].split("/")[0]
        server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
        cmd = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", port, "--no-ui"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=server_log.open("w"), stderr=subprocess.STDOUT))
        wait_for("prefect server", lambda: get_json(f"{api}/health"), procs[0], server_log)
        cmd = [sys.executable, "-m", "flows.retrain", "--cron", "0 3 * * *", "--params", str(tmp_path / "retrain.json")]
        procs.append(subprocess.Popen(cmd, cwd=clone, env=env, stdout=serve_log.open("w"), stderr=subprocess.STDOUT))
        deployment = f"{api}/deployments/name/sr-retrain/sr-retrain"
        wait_for("served deployment", lambda: get_json(deployment), procs[1], serve_log)

        trigger = subprocess.run(["prefect", "deployment", "run", "sr-retrain/sr-retrain", "--watch",
                                  "--watch-timeout", "150"], env=env, capture_output=True, text=True, timeout=180)
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", trigger.stdout).group(1)
        flow_run = get_json(f"{api}/flow_runs/{flow_run_id}")
        assert flow_run["state"]["type"] == "COMPLETED", f"{trigger.stdout}\n{serve_log.read_text()[-3000:]}"
        assert trigger.returncode == 0, trigger.stdout
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=20)
    assert latest_version(prefix, "sr-onestep") == "0.1.0"
    published = json.loads(read_s3_bytes(f"{prefix}/sr-onestep/0.1.0/selection.json"))
    assert published == json.loads((clone / "dist/sr-onestep-0.1.0/selection.json").read_text())
    report = json.loads((clone / "metrics/eval.json").read_text())
    assert published["value"] == report[published["student"]]["heldout-realesrgan"]["lpips"]
