"""The Prefect flows on the REAL dvc.yaml (tiny params) in a temp git clone: every stage built by the flow and pushed
to a real S3 server (moto) (tests/conftest.py's `tiny_build`), a no-op rerun, `dvc repro --pull` in a second clone,
and a served retrain deployment triggered with `prefect deployment run` against a Prefect server started here."""

from __future__ import annotations

import json
import os
import re
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
from prefect.testing.utilities import prefect_test_harness

from flows.pipeline import sr_pipeline
from sr.publish import latest_version
from sr.storage import read_s3_bytes
from tests.conftest import free_port
from tests.pipeline_fixtures import STAGES, task_states, tool_env

BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, timeout: float = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="module")
def clone(tiny_build, s3) -> Path:
    """The clone that the session's flow built (tests/conftest.py); `s3` points this module at its S3 server."""
    return tiny_build.root


def test_flow_builds_every_stage_of_the_real_pipeline(tiny_build, clone):
    assert tiny_build.completed, tiny_build.message
    print(f"first run: {tiny_build.seconds:.1f} s")
    assert tiny_build.result == {stage: "Completed" for stage in STAGES}
    assert list(tiny_build.result) == STAGES
    assert tiny_build.tasks == {stage: "Completed" for stage in STAGES} | {"dvc-push": "Completed"}
    assert set(yaml.safe_load((clone / "dvc.lock").read_text())["stages"]) == set(STAGES)
    report = json.loads((clone / "metrics/eval.json").read_text())
    assert {f"student-{s}" for s in ["sinsr", "tadsr", "colearn", "osediff"]} <= set(report)
    assert (clone / "dist/sr-onestep-0.1.0.tar.gz").is_file()


def test_rerun_skips_every_stage_quickly(harness, clone):
    start = time.monotonic()
    rerun = sr_pipeline(repo=str(clone), return_state=True)
    elapsed = time.monotonic() - start
    assert rerun.is_completed()
    assert task_states(rerun.state_details.flow_run_id) == {stage: "Skipped" for stage in STAGES}
    assert elapsed < 30, f"a no-op rerun took {elapsed:.1f} s"


def test_fresh_clone_pulls_everything_and_runs_no_stage(clone, tmp_path):
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


def test_served_retrain_deployment_runs_when_triggered(clone, tmp_path, s3):
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
