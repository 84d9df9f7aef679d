"""The orchestrator's side of a stage on a work pool: the `sr-stage` deployment of each pool, the stage's inputs
pushed to the DVC remote, one flow run per stage watched until it ends, and the stage's dvc.lock entry merged back.

A run is watched, not just awaited: while nobody has picked it up, the pool must have a live worker (one whose
heartbeat is recent) or the stage fails after `worker_wait_s`; once a worker has it, that worker must stay alive (never
silent past `worker_silence_s`), or the stage fails naming it. A busy pool (every worker at its limit, or the pool's
concurrency limit reached) is not a dead one: the run just waits its turn.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.deployments import run_deployment
from prefect.deployments.runner import EntrypointType
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Crashed

from flows import dvcops
from flows.dvcops import REPO_LOCK, run_dvc
from flows.placement import CREDENTIALS, Placement, PlacementError, has_credentials
from flows.stage import git, parse_entry_markdown, sr_stage

DEPLOYMENT = "sr-stage"
MISSED_HEARTBEATS = 3  # Prefect's own rule for calling a worker offline
WORKER_LABEL = "prefect.worker.name"  # set by a worker on each flow run it takes


class PoolError(RuntimeError):
    """No live worker on a pool, or the worker building a stage died: retrying at once would not help."""


def prepare_pools(root: Path, table: Placement, pools: set[str], source: str | None) -> tuple[Placement, str]:
    """The commit workers build, the URL they fetch it from (the table's, else `origin`), and the deployments."""
    commit = git(["rev-parse", "HEAD"], root)
    if not table.git_url:
        origin = git(["remote", "get-url", "origin"], root)
        if has_credentials(origin):
            raise PlacementError(f"{root}: git remote origin: {CREDENTIALS}; or set git_url in {source}")
        table = table.model_copy(update={"git_url": origin})
    ensure_deployments(pools)
    return table, commit


def ensure_deployments(pools: set[str]) -> None:
    """One `sr-stage/<pool>` deployment per pool; its entrypoint is a module of the installed project, so a worker
    imports the flow from its own environment and needs no copy of the orchestrator's files."""
    with get_client(sync_client=True) as client:
        for pool in sorted(pools):
            try:
                client.read_work_pool(pool)
            except ObjectNotFound:
                raise RuntimeError(f"work pool {pool!r} does not exist: `prefect work-pool create {pool} --type "
                                   f"process` (or kubernetes) and start a worker on it") from None
    for pool in sorted(pools):
        deployment = sr_stage.to_deployment(name=pool, work_pool_name=pool, entrypoint_type=EntrypointType.MODULE_PATH)
        deployment.apply()


def live_workers(client, pool: str, silence_s: float) -> set[str]:
    """Workers heard from within `silence_s` (or three of their own heartbeat intervals, when that is longer)."""
    now = datetime.now(UTC)
    alive = set()
    for worker in client.read_workers_for_work_pool(pool):
        limit = max(silence_s, MISSED_HEARTBEATS * (worker.heartbeat_interval_seconds or 30))
        if worker.last_heartbeat_time and (now - worker.last_heartbeat_time).total_seconds() < limit:
            alive.add(worker.name)
    return alive


def build_on_pool(stage: str, root: Path, force: bool, placement: Placement, commit: str, log) -> str:
    """Send `stage` to its pool with what it reads, wait, and merge what it built; returns the worker's name."""
    place = placement.place(stage)
    with REPO_LOCK:
        graph = dvcops.stages(root)
        check_committed(root, commit, graph)
        push_local_inputs(root, stage, graph, placement, log)
        lock = (root / "dvc.lock").read_text() if (root / "dvc.lock").exists() else ""
    parameters = {"stage": stage, "commit": commit, "git_url": placement.git_url, "lock": lock, "pool": place.pool,
                  "processes": place.processes, "force": force}
    worker, entry = run_on_pool(stage, place.pool, parameters, placement, log)
    with REPO_LOCK:
        dvcops.merge_lock_entry(root, stage, entry)
        log.info(f"stage {stage}: built on pool {place.pool} by worker {worker}; dvc.lock entry merged")
        bring_back_outputs(root, stage, dvcops.stages(root), placement, log)
    return worker


def check_committed(repo: Path, commit: str, graph: dict[str, dvcops.Stage]) -> None:
    """Workers build the commit, so a tracked file edited here (params, code) would be silently ignored there."""
    written = {"dvc.lock"} | {o.path for s in graph.values() for o in s.outs}  # DVC rewrites these; they travel
    changed = [line[3:] for line in git(["status", "--porcelain", "--untracked-files=no"], repo).splitlines()]
    dirty = [p for p in changed if p not in written and not p.endswith(".gitignore")]
    if dirty:
        raise RuntimeError(f"{repo}: {', '.join(dirty)} differ from commit {commit[:12]}: commit (and push) them "
                           f"first; workers build the commit, not this working tree")


def push_local_inputs(root: Path, stage: str, graph: dict[str, dvcops.Stage], placement: Placement, log) -> None:
    """What a stage on a pool reads from stages of this process goes to the DVC remote first."""
    local = [o for producer, o in dvcops.inputs(stage, graph) if placement.pool(producer) is None]
    cached = [o.path for o in local if o.cached and (root / o.path).exists()]
    if cached:
        run_dvc(["push", *cached], root, log)
    dvcops.upload_uncached(root, local, log)


def bring_back_outputs(root: Path, stage: str, graph: dict[str, dvcops.Stage], placement: Placement, log) -> None:
    """After a stage built elsewhere: its `cache: false` files (git files: metrics, curves) always; its cached outputs
    only where a stage of this process reads them, or where an older copy here would contradict dvc.lock."""
    outs = graph[stage].outs
    dvcops.download_uncached(root, list(outs), log)
    readers = [s for s in graph.values() if s.name != stage and placement.pool(s.name) is None]
    wanted = [o.path for o in outs if o.cached and ((root / o.path).exists() or any(
        dvcops.overlaps(d, o.path) for s in readers for d in s.deps))]
    if wanted:
        run_dvc(["pull", "--force", *wanted], root, log)


def run_on_pool(stage: str, pool: str, parameters: dict, placement: Placement, log) -> tuple[str, dict]:
    """Run `sr-stage` for `stage` on `pool` and wait; returns (worker, the stage's new dvc.lock entry)."""
    flow_run = run_deployment(f"{DEPLOYMENT}/{pool}", parameters=parameters, timeout=0, flow_run_name=stage)
    log.info(f"stage {stage}: flow run {flow_run.name} queued on pool {pool}")
    with get_client(sync_client=True) as client:
        try:
            worker = watch(client, flow_run.id, stage, pool, placement, log)
        finally:
            # run_deployment stood a placeholder task run in for the child run; give it the child's final state
            child = client.read_flow_run(flow_run.id)
            if child.parent_task_run_id and child.state.is_final():
                client.set_task_run_state(child.parent_task_run_id, child.state.model_copy(), force=True)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
            any_=[flow_run.id])))
    if not artifacts:
        raise RuntimeError(f"stage {stage}: flow run {flow_run.name} on worker {worker} of pool {pool} completed "
                           f"without its dvc.lock entry")
    return worker, parse_entry_markdown(artifacts[0].data)


def watch(client, flow_run_id, stage: str, pool: str, placement: Placement, log) -> str:
    """Poll the run until it completes; raise naming the stage, the pool and the worker otherwise."""
    waiting_since = time.monotonic()
    worker = None
    while True:
        run = client.read_flow_run(flow_run_id)
        if run.state.is_completed():
            return run.labels.get(WORKER_LABEL, worker or "?")
        if run.state.is_final():
            who = run.labels.get(WORKER_LABEL, "?")
            raise RuntimeError(f"stage {stage} failed on pool {pool}, worker {who}: {run.state.message}")
        if worker is None and WORKER_LABEL in run.labels:
            worker = run.labels[WORKER_LABEL]
            log.info(f"stage {stage}: taken by worker {worker} of pool {pool}")
        alive = live_workers(client, pool, placement.worker_silence_s)
        if worker is None:
            if alive:
                waiting_since = time.monotonic()
            elif time.monotonic() - waiting_since > placement.worker_wait_s:
                message = f"stage {stage}: pool {pool} has no live worker (waited {placement.worker_wait_s:g} s)"
                client.set_flow_run_state(flow_run_id, Cancelled(message=message), force=True)  # nobody takes it later
                raise PoolError(message)
        elif worker not in alive:
            message = (f"stage {stage}: worker {worker} of pool {pool} died while building it (no heartbeat); "
                       f"nothing of it was merged")
            client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
            raise PoolError(message)
        time.sleep(placement.poll_s)
