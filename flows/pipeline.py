"""The SR pipeline as a Prefect flow: one task per DVC stage, in the order of the DVC DAG.

DVC decides what is stale (`dvc status`) and how to rebuild it (`dvc repro --single-item`); Prefect adds retries for
network steps, live logs and a record of every run. Flows call DVC, never the reverse, and are the only code that runs
`dvc`. The flow reads whatever `dvc.yaml` holds: it knows no stage by name except the network ones below.

With a placement table (flows/placement.py) a stage can run on a Prefect work pool instead of in this process: the
`sr-stage` flow (flows/stage.py) builds it on a worker at this checkout's commit, and its outputs travel through the
DVC remote. Stages run as soon as the stages they read are done: several stages on pools at once, stages of this
process one at a time (DVC locks the repo), each in DAG order.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import task_run as this_task_run
from prefect.states import Completed
from prefect.tasks import exponential_backoff

from flows import dvcops
from flows.dispatch import PoolError, build_on_pool, prepare_pools
from flows.dvcops import REPO_LOCK, run_dvc, up_to_date
from flows.placement import LOCAL, Placement, load_placement
from sr.launch import PROCESSES_ENV

# Only these stages talk to the network, so only they (and dvc pull/push) are worth retrying; a training stage that
# failed once fails the same way again.
NETWORK_STAGES = ("download",)
NETWORK_RETRIES = 3
NETWORK_BACKOFF_S = 10.0


def stage_graph(repo: Path) -> tuple[list[str], dict[str, set[str]]]:
    """Every stage of the repo (foreach expanded: `distill@sinsr`) in DAG order, ties kept in dvc.yaml order, and
    the stages each one reads from."""
    dot = "\n".join(run_dvc(["dag", "--dot"], repo))
    # Nodes come in dvc.yaml order; `.dvc` files are nodes too but not stages. Edges follow the data: "a" -> "b"
    # means b reads what a writes.
    names = [n for n in re.findall(r'^"([^"]+)";$', dot, re.MULTILINE) if not n.endswith(".dvc")]
    edges = re.findall(r'^"([^"]+)" -> "([^"]+)";$', dot, re.MULTILINE)
    before = {n: {a for a, b in edges if b == n and a in names} for n in names}
    order: list[str] = []
    while len(order) < len(names):
        ready = [n for n in names if n not in order and before[n] <= set(order)]
        if not ready:
            raise RuntimeError(f"{repo}/dvc.yaml: the stage graph has a cycle")
        order.append(ready[0])
    return order, before


def select_stages(order: list[str], wanted: list[str] | None) -> list[str]:
    """`wanted` in DAG order; a foreach name (`distill`) stands for all its items (`distill@sinsr`, ...)."""
    if wanted is None:
        return order
    for name in wanted:
        if not any(s == name or s.startswith(name + "@") for s in order):
            raise ValueError(f"unknown stage {name!r}; dvc.yaml has: {', '.join(order)}")
    return [s for s in order if s in wanted or s.split("@")[0] in wanted]


def stage_run_name() -> str:
    """`teacher` in this process, `teacher on gpu` on a pool (its final state names the worker)."""
    params = this_task_run.parameters
    pool = params.get("placement", LOCAL).pool(params["stage"])
    return params["stage"] if pool is None else f"{params['stage']} on {pool}"


@task(cache_policy=NO_CACHE, task_run_name=stage_run_name)
def run_stage(stage: str, repo: str, force: bool = False, placement: Placement = LOCAL, commit: str = ""):
    """Rebuild one stage if DVC says it is stale (or when forced), here or on its pool; an up-to-date stage ends as
    Completed "Skipped". Returns where it ran: {"pool": ..., "worker": ...}, empty strings for this process."""
    log = get_run_logger()
    root = Path(repo)
    place = placement.place(stage)
    spread = bool(placement.stages)  # some stages run elsewhere: data may be only in the DVC remote
    with REPO_LOCK:
        if not force and up_to_date(stage, root, spread):
            log.info(f"stage {stage} is up to date")
            return Completed(name="Skipped", message=f"stage {stage} is up to date")
        if place is None or place.pool is None:
            if spread:
                dvcops.pull_inputs(root, stage, dvcops.stages(root), log)
            env = {PROCESSES_ENV: str(place.processes if place else 1)}
            run_dvc(["repro", "--single-item", *(["--force"] if force else []), stage], root, log, env)
            return {"pool": "", "worker": ""}
    worker = build_on_pool(stage, root, force, placement, commit, log)
    # a task run's name is fixed when it starts; the worker, known only now, goes into its final state's message
    return Completed(message=f"built on pool {place.pool} by worker {worker}",
                     data={"pool": place.pool, "worker": worker})


def network_trouble(task, task_run, state) -> bool:
    """Prefect retry condition: retry what the network did, not a pool without workers or a worker that died."""
    try:
        state.result()
    except PoolError:
        return False
    except Exception:  # noqa: BLE001 (any other failure of a network stage is worth another try)
        return True
    return False


def stage_task(stage: str):
    """The task for one stage, with retries only where the stage reaches the network."""
    if stage.split("@")[0] in NETWORK_STAGES:
        backoff = exponential_backoff(backoff_factor=NETWORK_BACKOFF_S)
        return run_stage.with_options(retries=NETWORK_RETRIES, retry_delay_seconds=backoff,
                                      retry_condition_fn=network_trouble)
    return run_stage


@task(
    cache_policy=NO_CACHE,
    task_run_name="dvc-{command}",
    retries=NETWORK_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=NETWORK_BACKOFF_S),
)
def dvc_transfer(command: str, repo: str) -> None:
    """`dvc push` or `dvc pull`: moves cached outputs to or from the DVC remote."""
    if command not in ("push", "pull"):
        raise ValueError(f"dvc_transfer: command must be 'push' or 'pull', not {command!r}")
    run_dvc([command], Path(repo), get_run_logger())


def flatten(values: dict, prefix: str = "") -> dict[str, object]:
    """{"val": {"lpips": 0.2}} -> {"val/lpips": 0.2}: one column per leaf, whatever the nesting."""
    flat: dict[str, object] = {}
    for key, value in values.items():
        flat.update(flatten(value, f"{prefix}{key}/") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def metrics_table(metrics: dict) -> str:
    """A markdown table of eval.json: one row per method, one column per (dataset/)metric."""
    rows = {
        method: flatten(values) if isinstance(values, dict) else {"value": values} for method, values in metrics.items()
    }
    columns = list(dict.fromkeys(col for row in rows.values() for col in row))
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {m} | " + " | ".join(cell(row.get(c)) for c in columns) + " |" for m, row in rows.items()]
    return "\n".join(lines)


def evaluation_report(metrics_dir: Path) -> dict | None:
    """eval.json (None before the evaluate stage ran), each method with its timings from latency.json as a `latency`
    group when the latency stage has run: timings live apart because they differ from machine to machine."""
    eval_json, latency_json = metrics_dir / "eval.json", metrics_dir / "latency.json"
    if not eval_json.exists():
        return None
    report = json.loads(eval_json.read_text())
    if latency_json.exists():
        for method, timing in json.loads(latency_json.read_text()).items():
            if method in report and not method.startswith("_"):
                report[method]["latency"] = timing
    return report


def placement_table(rows: dict[str, dict], states: dict[str, str]) -> str:
    lines = ["| stage | state | pool | worker |", "|---|---|---|---|"]
    for stage, state in states.items():
        row = rows.get(stage) or {}
        lines.append(f"| {stage} | {state} | {row.get('pool') or 'this process'} | {row.get('worker') or ''} |")
    return "\n".join(lines)


@flow(name="sr-pipeline")
def sr_pipeline(stages: list[str] | None = None, force: bool = False, push: bool = False, repo: str = ".",
                placement: str | None = None) -> dict:
    """Run the DVC stages in DAG order (all, or `stages`), each where `placement` (a YAML file, relative to `repo`)
    puts it; returns {stage: final state name}."""
    root = Path(repo).resolve()
    table = load_placement(root / placement if placement else None)
    order, before = stage_graph(root)
    table.check_stages(str(placement), order)
    selected = select_stages(order, stages)
    commit = ""
    if pools := {table.pool(s) for s in selected} - {None}:
        table, commit = prepare_pools(root, table, pools, placement)

    pending, running, states, rows = list(selected), {}, {}, {}
    failed = None
    while pending or running:
        for stage in [s for s in pending if failed is None and before[s] & set(selected) <= set(states)]:
            # one stage of this process at a time, the first ready in DAG order (as without placement)
            if table.pool(stage) is None and any(table.pool(r) is None for r in running):
                continue
            running[stage] = stage_task(stage).submit(stage, str(root), force, table, commit)
            pending.remove(stage)
        if not running:
            break  # a failure left stages that will never be ready
        future = next(as_completed(list(running.values())))
        stage = next(s for s, f in running.items() if f is future)
        del running[stage]
        future.wait()  # its final state, not what the API has heard so far
        state = future.state
        states[stage] = state.name
        if state.is_completed():
            rows[stage] = future.result() if state.name != "Skipped" else {"pool": table.pool(stage)}
        elif failed is None:
            failed = state  # later stages need this one; stages already running elsewhere finish and are merged
    states = {s: states[s] for s in selected if s in states}
    create_markdown_artifact(markdown=f"# Stages\n\n{placement_table(rows, states)}\n", key="sr-stages",
                             description="where each stage ran")
    if failed is not None:
        failed.result()  # raises the stage's error, which fails the flow
    if push:
        dvc_transfer("push", str(root))
    report = evaluation_report(root / "metrics")
    if report is not None:
        create_markdown_artifact(
            markdown=f"# Evaluation\n\n{metrics_table(report)}\n",
            key="sr-eval",
            description="metrics/eval.json + metrics/latency.json",
        )
    return states


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description="One run of the pipeline flow.")
    parser.add_argument("--placement", help="YAML table of stages to work pools (default: every stage here)")
    parser.add_argument("--stages", nargs="+", help="only these stages (a foreach name stands for its items)")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--push", action="store_true", help="dvc push at the end")
    args = parser.parse_args(argv)
    sr_pipeline(stages=args.stages, force=args.force, push=args.push, placement=args.placement)


if __name__ == "__main__":
    main()  # every stage of ./dvc.yaml; in the UI, a deployment of this flow takes stages/force/push/placement
