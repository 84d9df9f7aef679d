"""Stages on Prefect work pools, all real and on loopback: a Prefect server, process workers on pools `cpu` and `gpu`
(each in its own empty work folder), a moto S3 server as the DVC remote, and a bare git repository as the source the
workers clone. The tiny params of the real dvc.yaml run with degrade on `cpu`, teacher, distill and osediff on `gpu`
(two workers), and the rest in the flow's own process; the session's all-local build of the same files and params
(tests/conftest.py's `tiny_build`) is the reference."""

from __future__ import annotations

import contextvars
import itertools
import json
import os
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("DO_NOT_TRACK", "1")

import psutil
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.workers.process import ProcessWorker

from flows.pipeline import sr_pipeline, stage_graph
from sr.storage import list_s3
from tests.conftest import free_port
from tests.pipeline_fixtures import REPO, tiny_clone
from tests.test_flows_pipeline import BIN, get_json, run, wait_for

GPU = ["teacher", "distill@sinsr", "distill@tadsr", "distill@colearn", "baseline", "osediff"]
CPU = ["degrade"]
# The product's default silence (flows/placement.py): on CI's loaded 2-core machine the SQLite server once recorded no
# heartbeat of a live worker for 30 s, and the run took it for dead. `distributed` prints the longest silence it saw.
PLACEMENT = {"worker_wait_s": 120, "worker_silence_s": 90, "poll_s": 0.5,
             "stages": {"degrade": {"pool": "cpu"}, "teacher": {"pool": "gpu"}, "distill": {"pool": "gpu"},
                        "baseline": {"pool": "gpu"}, "osediff": {"pool": "gpu"}}}
CACHED_OUTS = {"download": ["data/raw"], "degrade": ["data/shards"], "teacher": ["models/teacher"],
               "trajectories": ["data/trajectories"], "osediff": ["models/student-osediff"], "package": ["dist"],
               "baseline": ["models/baseline-srvgg"],
               **{f"distill@{r}": [f"models/student-{r}"] for r in ("sinsr", "tadsr", "colearn")}}
INPUTS = {"degrade": ["data/raw"], "teacher": ["data/shards"], "osediff": ["data/shards"], "baseline": ["data/shards"],
          **{f"distill@{r}": ["models/teacher", "data/trajectories", "data/shards"] for r in ("sinsr", "tadsr",
                                                                                              "colearn")}}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("workers")


@pytest.fixture(scope="module")
def server(root, s3):
    """`prefect server start` on a free port; this process's flows and every worker talk to it."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PREFECT_HOME": str(root / "prefect"),
           "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DVC_NO_ANALYTICS": "1",
           "OMP_NUM_THREADS": "1", "PREFECT_WORKER_HEARTBEAT_SECONDS": "2", "PREFECT_WORKER_QUERY_SECONDS": "1",
           # SQLite under every stage's streamed logs: a write waits for the lock instead of failing after 5-10 s
           # (a lost heartbeat write made a live worker look dead: "heartbeat persistence failed: database is locked")
           "PREFECT_SERVER_DATABASE_TIMEOUT": "60", "PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT": "60"}
    log = root / "server.log"
    cmd = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_for("prefect server", lambda: get_json(f"{api}/health"), proc, log)
        with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            template = ProcessWorker.get_default_base_job_template()
            for pool in ("cpu", "gpu", "idle"):
                client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template))
            try:
                yield env
            finally:
                # This process's log and event workers are process-wide: flushed and stopped while their server
                # lives, or the next module's task runs would go on being sent to this dead server.
                APILogWorker.drain_all()
                EventsWorker.drain_all()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Worker:
    """`prefect worker start` in its own work folder (its log beside it); `kill` is a machine dying: kill -9 of the
    worker and everything it started."""

    def __init__(self, env: dict, root: Path, pool: str, name: str):
        self.env, self.pool, self.name = env, pool, name
        self.folder, self.log = root / name, root / f"{name}.log"
        self.folder.mkdir(exist_ok=True)
        self.proc = None

    def start(self, wait: bool = True) -> None:
        env = {**self.env, "SR_WORK_DIR": str(self.folder)}
        cmd = ["prefect", "worker", "start", "--pool", self.pool, "--name", self.name, "--type", "process",
               "--limit", "1"]
        self.proc = subprocess.Popen(cmd, cwd=self.folder, env=env, stdout=self.log.open("a"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait()

    def wait(self) -> None:
        wait_for(f"worker {self.name}", self.online, self.proc, self.log, timeout=120)

    def online(self) -> bool | None:
        with get_client(sync_client=True) as client:
            workers = client.read_workers_for_work_pool(self.pool)
        return True if any(w.name == self.name and w.status == "ONLINE" for w in workers) else None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
            for proc in tree:
                proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.terminate()
        self.join()

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()

    def join(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def workers(server, root):
    started = {name: Worker(server, root, pool, name) for pool, name in
               [("cpu", "cpu-1"), ("gpu", "gpu-1"), ("gpu", "gpu-2")]}
    try:
        for worker in started.values():
            worker.start(wait=False)  # side by side: each takes seconds to import Prefect
        for worker in started.values():
            worker.wait()
        yield started
    finally:
        for worker in started.values():
            worker.terminate()  # all at once: each takes seconds to wind down
        for worker in started.values():
            worker.join()


@pytest.fixture(scope="module")
def origin(root, s3) -> Path:
    """A bare repository of the tiny clone: the working tree's files, tiny params, the S3 DVC remote."""
    src = root / "src"
    tiny_clone(src, s3)
    run(["git", "clone", "-q", "--bare", str(src), str(root / "origin.git")], root)
    return root / "origin.git"


def checkout(origin: Path, dest: Path) -> Path:
    run(["git", "clone", "-q", str(origin), str(dest)], dest.parent)
    (dest / ".torch").symlink_to(REPO / ".torch")
    return dest


@pytest.fixture(scope="module")
def orchestrator(root, origin) -> Path:
    repo = checkout(origin, root / "orchestrator")
    (root / "placement.yaml").write_text(yaml.safe_dump(PLACEMENT))
    return repo


@pytest.fixture(scope="module")
def stages(orchestrator) -> list[str]:
    return stage_graph(orchestrator)[0]


def flow_runs(name: str) -> list:
    """Every `sr-stage` run on the server, oldest first."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
    return sorted(runs, key=lambda r: r.created)


def stage_runs() -> list:
    return flow_runs("cpu") + flow_runs("gpu") + flow_runs("idle")


def task_runs(flow_run_id) -> dict[str, tuple[str, str | None]]:
    """{name: (state, message)} of a flow run's stage tasks (run_deployment's placeholders for child runs left out)."""
    placeholders = {r.parent_task_run_id for r in stage_runs()}
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name: (run.state.name, run.state.message) for run in runs if run.id not in placeholders}


def run_logs(flow_run_id) -> list[str]:
    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))]


def hashes(lock: Path) -> dict[str, dict[str, str]]:
    stages = yaml.safe_load(lock.read_text())["stages"]
    return {name: {o["path"]: o["md5"] for o in entry.get("outs", [])} | {f"dep:{d['path']}": d["md5"] for d in
            entry.get("deps", [])} for name, entry in stages.items() if name != "latency"}


class Silences(threading.Thread):
    """The longest time, per worker, since the server last recorded its heartbeat, sampled every second."""

    def __init__(self, pools: list[str]):
        super().__init__(target=contextvars.copy_context().run, args=(self.sample,), daemon=True)
        self.pools, self.longest, self.done = pools, {}, threading.Event()

    def sample(self) -> None:
        with get_client(sync_client=True) as client:
            while not self.done.wait(1.0):
                now = datetime.now(UTC)
                for pool in self.pools:
                    for w in client.read_workers_for_work_pool(pool):
                        if w.last_heartbeat_time:
                            age = (now - w.last_heartbeat_time).total_seconds()
                            self.longest[w.name] = max(age, self.longest.get(w.name, 0.0))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()

    def __str__(self) -> str:
        return ", ".join(f"{name} {age:.1f} s" for name, age in sorted(self.longest.items()))


@pytest.fixture(scope="module")
def distributed(workers, orchestrator, root):
    start = time.monotonic()
    with Silences(["cpu", "gpu"]) as silences:
        state = sr_pipeline(repo=str(orchestrator), placement=str(root / "placement.yaml"), return_state=True)
    print(f"distributed run: {time.monotonic() - start:.1f} s; longest heartbeat silence: {silences}")
    return state


@pytest.mark.timeout(1500)
def test_pipeline_runs_each_stage_on_its_pool(distributed, orchestrator, workers, tiny_build, stages):
    assert distributed.is_completed(), distributed.message
    assert distributed.result() == {stage: "Completed" for stage in stages}
    runs = {r.parameters["stage"]: r for r in stage_runs()}
    assert sorted(runs) == sorted(CPU + GPU)
    assert all(r.state.name == "Completed" for r in runs.values())
    where = {stage: r.labels["prefect.worker.name"] for stage, r in runs.items()}
    assert {where[s] for s in CPU} == {"cpu-1"} and {where[s] for s in GPU} <= {"gpu-1", "gpu-2"}
    pool = {s: "cpu" if s in CPU else "gpu" for s in runs}
    expected = {s: ("Completed", None) for s in stages if s not in runs}
    expected |= {f"{s} on {pool[s]}": ("Completed", f"built on pool {pool[s]} by worker {where[s]}") for s in runs}
    assert {name: (state, message or None) for name, (state, message) in task_runs(
        distributed.state_details.flow_run_id).items()} == expected
    with get_client(sync_client=True) as client:
        table = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["sr-stages"])))
    assert f"| teacher | Completed | gpu | {where['teacher']} |" in table[0].data
    assert "| evaluate | Completed | this process |  |" in table[0].data

    # each GPU folder holds the working copy and what its stages pulled and built, nothing else
    for name in ("gpu-1", "gpu-2", "cpu-1"):
        ran = [s for s in runs if where[s] == name]
        expected = {p for s in ran for p in CACHED_OUTS[s] + INPUTS.get(s, [])}
        present = {p for paths in CACHED_OUTS.values() for p in paths if (workers[name].folder / "repo" / p).exists()}
        assert present == expected, name
        assert sorted(p.name for p in workers[name].folder.iterdir()) == [".lock", "repo"]

    # the three recipes overlapped on the two GPU workers
    spans = [(runs[s].start_time, runs[s].end_time) for s in GPU if s.startswith("distill@")]
    overlaps = sum(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1:])
    assert overlaps >= 1, spans
    assert {where[s] for s in GPU if s.startswith("distill@")} == {"gpu-1", "gpu-2"}

    # the same hashes as the all-local build of the same files and params (latency is machine-dependent)
    assert tiny_build.completed, tiny_build.message
    assert hashes(orchestrator / "dvc.lock") == hashes(tiny_build.root / "dvc.lock")
    assert json.loads((orchestrator / "metrics/teacher.json").read_text()) == json.loads(
        (tiny_build.root / "metrics/teacher.json").read_text())  # a cache: false output came back through the remote
    # the merged entries agree with what this checkout holds: nothing to rebuild, nothing missing
    assert run(["dvc", "status"], orchestrator).strip().endswith("Data and pipelines are up to date.")


def test_rerun_skips_every_stage_without_a_worker(distributed, orchestrator, root, stages):
    before = len(stage_runs())
    rerun = sr_pipeline(repo=str(orchestrator), placement=str(root / "placement.yaml"), return_state=True)
    assert rerun.is_completed(), rerun.message
    assert set(rerun.result().values()) == {"Skipped"}
    names = {name: state for name, (state, _) in task_runs(rerun.state_details.flow_run_id).items()}
    assert names == {s if s not in CPU + GPU else f"{s} on {'cpu' if s in CPU else 'gpu'}": "Skipped" for s in stages}
    assert len(stage_runs()) == before


def test_pool_without_worker_fails_within_the_wait(distributed, orchestrator, root):
    placement = root / "idle.yaml"
    placement.write_text(yaml.safe_dump({"worker_wait_s": 3, "poll_s": 0.5, "stages": {"download": {"pool": "idle"}}}))
    start = time.monotonic()
    state = sr_pipeline(stages=["download"], force=True, repo=str(orchestrator), placement=str(placement),
                        return_state=True)
    elapsed = time.monotonic() - start
    assert state.is_failed()
    with pytest.raises(RuntimeError) as err:
        state.result()
    assert str(err.value) == "stage download: pool idle has no live worker (waited 3 s)"
    assert elapsed < 30, elapsed
    assert flow_runs("idle")[-1].state.name == "Cancelled"  # a worker started later must not build it


def test_the_pool_concurrency_limit_runs_the_recipes_one_at_a_time(distributed, orchestrator, workers, root):
    """Two free GPU workers, but the pool's limit is 1: the three recipes, rebuilt, never overlap."""
    before = {r.id for r in flow_runs("gpu")}
    with get_client(sync_client=True) as client:
        client.update_work_pool("gpu", WorkPoolUpdate(concurrency_limit=1))
        try:
            state = sr_pipeline(stages=["distill"], force=True, repo=str(orchestrator),
                                placement=str(root / "placement.yaml"), return_state=True)
        finally:
            client.update_work_pool("gpu", WorkPoolUpdate(concurrency_limit=None))
    assert state.is_completed(), state.message
    runs = [r for r in flow_runs("gpu") if r.id not in before]
    assert sorted(r.parameters["stage"] for r in runs) == [f"distill@{r}" for r in ("colearn", "sinsr", "tadsr")]
    spans = sorted((r.start_time, r.end_time) for r in runs)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    assert run(["dvc", "status"], orchestrator).strip().endswith("Data and pipelines are up to date.")


def checkpoints(folder: Path) -> set[Path]:
    return set(folder.glob("repo/checkpoints/teacher/*/step-*"))


def wait_for_checkpoint(folder: Path, old: set[Path], thread: threading.Thread, timeout: float = 300) -> Path:
    """The first checkpoint of this run (the first run's teacher may have left its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        if new := checkpoints(folder) - old:
            return max(new)
        time.sleep(0.2)
    raise TimeoutError(f"no new teacher checkpoint in {folder}")


STEPS = 60  # the kill lands after the first checkpoint (step 4), seconds before the last step


def test_killed_worker_fails_the_stage_and_a_rerun_resumes(distributed, orchestrator, origin, workers, root, s3):
    workers["gpu-2"].stop()  # one GPU worker: the rerun lands where the checkpoint is
    gpu = workers["gpu-1"]
    params = yaml.safe_load((orchestrator / "params.yaml").read_text())
    params["teacher"]["train"].update(steps=STEPS, ckpt_every=4)
    (orchestrator / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "-qam", "longer teacher"], orchestrator)
    run(["git", "push", "-q", "origin", "HEAD"], orchestrator)
    lock_before = (orchestrator / "dvc.lock").read_text()
    objects_before = {o.key for o in list_s3(f"s3://{s3}/dvc/")}
    old = checkpoints(gpu.folder)

    result = {}
    args = {"stages": ["teacher"], "repo": str(orchestrator), "placement": str(root / "placement.yaml")}
    # the thread runs in a copy of this context, so its flow talks to the same server (settings are a context var)
    flow_run = contextvars.copy_context().run
    thread = threading.Thread(target=flow_run, args=(lambda: result.update(state=sr_pipeline(**args,
                                                                                               return_state=True)),))
    thread.start()
    checkpoint = wait_for_checkpoint(gpu.folder, old, thread)
    gpu.kill()
    thread.join(timeout=180)  # found dead after worker_silence_s
    state = result["state"]
    assert state.is_failed()
    with pytest.raises(RuntimeError) as err:
        state.result()
    assert str(err.value) == ("stage teacher: worker gpu-1 of pool gpu died while building it (no heartbeat); "
                              "nothing of it was merged")
    assert (orchestrator / "dvc.lock").read_text() == lock_before
    assert {o.key for o in list_s3(f"s3://{s3}/dvc/")} == objects_before

    gpu.start()
    rerun = sr_pipeline(**args, return_state=True)
    assert rerun.is_completed(), rerun.message
    step = int(checkpoint.name.split("-")[1])
    logs = run_logs(flow_runs("gpu")[-1].id)
    resumed = [line for line in logs if line.startswith("teacher: resumed from checkpoint at step")]
    assert resumed and int(resumed[0].split("step ")[1].split()[0]) >= step, logs[-20:]
    assert yaml.safe_load((orchestrator / "dvc.lock").read_text())["stages"]["teacher"]["params"]["params.yaml"][
        "teacher"]["train"]["steps"] == STEPS
