"""The `sr-stage` flow: one DVC stage built on a worker, at the orchestrator's exact commit.

A worker keeps one working copy in its own work folder ($SR_WORK_DIR, default ~/sr-worker): `repo/` (a clone of the
configured git URL, with its DVC cache) and whatever the stages it ran left under `repo/checkpoints/`, so a stage
that was interrupted resumes from its last checkpoint the next time this worker gets it. One run at a time uses the
folder (a file lock), whatever the worker's own `--limit`.

The run: check out the commit, take the orchestrator's dvc.lock, pull exactly the stage's inputs, `dvc repro
--single-item`, push the outputs, and hand the stage's new dvc.lock entry back as a markdown artifact of this flow
run (results stored by Prefect live on the machine that wrote them; artifacts live on the server).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from dvc.utils.serialize import dumps_yaml, parse_yaml
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows import dvcops
from sr.launch import PROCESSES_ENV
from sr.storage import atomic_write_text

WORK_DIR_ENV = "SR_WORK_DIR"
ENTRY_FENCE = "```yaml"


def work_dir(stage: str) -> Path:
    """$SR_WORK_DIR; a `{stage}` in it gives each stage a working copy of its own (pods sharing one volume)."""
    template = os.environ.get(WORK_DIR_ENV) or str(Path.home() / "sr-worker")
    return Path(template.replace("{stage}", stage.replace("@", "-"))).resolve()


def worker_name() -> str:
    """The name the worker gave the server (it passes it to every run it starts), else this machine's name."""
    return os.environ.get("PREFECT__WORKER_NAME") or os.uname().nodename


def git(args: list[str], repo: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`git {' '.join(args)}` failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def checkout(repo: Path, git_url: str, commit: str, log) -> None:
    """`repo` at exactly `commit`: tracked files reset, ignored ones (data, checkpoints, .dvc/cache) kept."""
    if not (repo / ".git").exists():
        # a clone killed halfway must not look like a working copy next time: clone beside, then rename
        tmp = repo.with_name(repo.name + ".clone")
        shutil.rmtree(tmp, ignore_errors=True)
        git(["clone", "--quiet", "--no-checkout", git_url, str(tmp)], repo.parent)
        tmp.rename(repo)
    git(["fetch", "--quiet", "--tags", "--force", git_url, "+refs/heads/*:refs/remotes/origin/*"], repo)
    try:
        git(["cat-file", "-e", f"{commit}^{{commit}}"], repo)
    except RuntimeError:
        raise RuntimeError(f"commit {commit} is not on {git_url}: push it there before running the flow")
    git(["checkout", "--quiet", "--force", "--detach", commit], repo)
    log.info(f"{repo} at commit {commit} from {git_url}")


def link_torch_home(repo: Path) -> None:
    """Stages read the offline LPIPS/NIQE weights from `.torch` in the working copy (dvc.yaml says so); a worker's
    checkout provisioned them (`make setup`) where $TORCH_HOME points."""
    home = os.environ.get("TORCH_HOME")
    if home and Path(home).is_dir() and not (repo / ".torch").exists():
        (repo / ".torch").symlink_to(Path(home).resolve())


@contextmanager
def folder_lock(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the process ends, however it ends
        yield


def entry_markdown(stage: str, worker: str, pool: str, commit: str, entry: dict, ran: bool) -> str:
    what = "built" if ran else "was up to date"
    return f"# {stage}\n\n{what} on worker `{worker}` (pool `{pool}`) at commit `{commit}`\n\n{ENTRY_FENCE}\n" \
           f"{dumps_yaml(entry)}```\n"


def parse_entry_markdown(markdown: str) -> dict:
    return parse_yaml(markdown.split(ENTRY_FENCE + "\n", 1)[1].rsplit("```", 1)[0], "artifact")


@flow(name="sr-stage")
def sr_stage(stage: str, commit: str, git_url: str, lock: str, pool: str = "", processes: int = 1,
             force: bool = False) -> str:
    """Build `stage` at `commit` against the orchestrator's `lock` (dvc.lock text); returns the worker's name."""
    log = get_run_logger()
    worker = worker_name()
    folder = work_dir(stage)
    repo = folder / "repo"
    log.info(f"stage {stage} on worker {worker} (pool {pool}), work folder {folder}")
    with folder_lock(folder):
        checkout(repo, git_url, commit, log)
        if lock:
            atomic_write_text(repo / "dvc.lock", lock)
        else:  # nothing built yet on the orchestrator's side: no lock either
            (repo / "dvc.lock").unlink(missing_ok=True)
        link_torch_home(repo)
        graph = dvcops.stages(repo)
        dvcops.pull_inputs(repo, stage, graph, log)
        repro = ["repro", "--single-item", *(["--force"] if force else []), stage]
        lines = dvcops.run_dvc(repro, repo, log, env={PROCESSES_ENV: str(processes)})
        ran = f"Stage '{stage}' didn't change, skipping" not in lines
        dvcops.run_dvc(["push", stage], repo, log)
        outs = list(dvcops.stages(repo)[stage].outs)  # the hashes of what was just built
        dvcops.upload_uncached(repo, outs, log)
        entry = dvcops.lock_entry(repo, stage)
    create_markdown_artifact(markdown=entry_markdown(stage, worker, pool, commit, entry, ran), key=None,
                             description=f"dvc.lock entry of {stage}")
    return worker
