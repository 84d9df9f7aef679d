"""The SR pipeline as a Prefect flow: one task per DVC stage, in the order of the DVC DAG.

DVC decides what is stale (`dvc status`) and how to rebuild it (`dvc repro --single-item`); Prefect adds retries for
network steps, live logs and a record of every run. Flows call DVC, never the reverse, and are the only code that runs
`dvc`. The flow reads whatever `dvc.yaml` holds: it knows no stage by name except the network ones below.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed
from prefect.tasks import exponential_backoff

# Only these stages talk to the network, so only they (and dvc pull/push) are worth retrying; a training stage that
# failed once fails the same way again.
NETWORK_STAGES = ("download",)
NETWORK_RETRIES = 3
NETWORK_BACKOFF_S = 10.0
TAIL_LINES = 30  # how much of a failed command's output goes into the error


def run_dvc(args: list[str], repo: Path, log=None) -> list[str]:
    """Run `dvc ARGS` in `repo`, sending each output line to `log` as it comes; raise with the last lines on failure."""
    # This interpreter's bin folder first on PATH, so `dvc` and the stages' `python` are the project venv's even when
    # it is not activated; unbuffered Python, so stage lines reach the Prefect log as they are printed.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
    lines: list[str] = []
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    with subprocess.Popen(["dvc", *args], cwd=repo, env=env, **pipe) as proc:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if log is not None:
                log.info(lines[-1])
    if proc.returncode != 0:
        tail = "\n".join(lines[-TAIL_LINES:])
        raise RuntimeError(f"`dvc {' '.join(args)}` failed with exit code {proc.returncode} in {repo}:\n{tail}")
    return lines


def stage_order(repo: Path) -> list[str]:
    """Every stage of the repo (foreach expanded: `distill@sinsr`) in DAG order, ties kept in dvc.yaml order."""
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
    return order


def select_stages(order: list[str], wanted: list[str] | None) -> list[str]:
    """`wanted` in DAG order; a foreach name (`distill`) stands for all its items (`distill@sinsr`, ...)."""
    if wanted is None:
        return order
    for name in wanted:
        if not any(s == name or s.startswith(name + "@") for s in order):
            raise ValueError(f"unknown stage {name!r}; dvc.yaml has: {', '.join(order)}")
    return [s for s in order if s in wanted or s.split("@")[0] in wanted]


@task(cache_policy=NO_CACHE, task_run_name="{stage}")
def run_stage(stage: str, repo: str, force: bool = False):
    """Rebuild one stage if DVC says it is stale (or when forced); an up-to-date stage ends as Completed "Skipped"."""
    log = get_run_logger()
    if not force:
        status = run_dvc(["status", "--json", stage], Path(repo))  # one JSON line, after any warnings
        if json.loads(status[-1] if status else "{}") == {}:
            log.info(f"stage {stage} is up to date")
            return Completed(name="Skipped", message=f"stage {stage} is up to date")
    run_dvc(["repro", "--single-item", *(["--force"] if force else []), stage], Path(repo), log)


def stage_task(stage: str):
    """The task for one stage, with retries only where the stage reaches the network."""
    if stage.split("@")[0] in NETWORK_STAGES:
        backoff = exponential_backoff(backoff_factor=NETWORK_BACKOFF_S)
        return run_stage.with_options(retries=NETWORK_RETRIES, retry_delay_seconds=backoff)
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


@flow(name="sr-pipeline")
def sr_pipeline(stages: list[str] | None = None, force: bool = False, push: bool = False, repo: str = ".") -> dict:
    """Run the DVC stages in DAG order (all, or `stages`); returns {stage: final state name}."""
    root = Path(repo).resolve()
    states: dict[str, str] = {}
    for stage in select_stages(stage_order(root), stages):
        state = stage_task(stage)(stage, str(root), force, return_state=True)
        states[stage] = state.name
        if not state.is_completed():
            state.result()  # raises the stage's error, which fails the flow; later stages need this one
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


if __name__ == "__main__":
    sr_pipeline()  # every stage of ./dvc.yaml; in the UI, a deployment of this flow takes stages/force/push
