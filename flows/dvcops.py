"""What the flows ask of DVC: run it, read its stage graph, and move one stage's data to or from the DVC remote.

Cached outputs travel with `dvc pull`/`dvc push`. Outputs marked `cache: false` (metrics, curves, grids) are git
files that `dvc push` skips; a stage built on another machine still has to bring them back, and a stage that reads
one has to find it, so they travel through the same remote, stored under their md5 exactly as DVC stores a cached
file. No dvc.lock entry points at such an object until the stage that wrote it is merged, so an interrupted transfer
leaves nothing that anyone reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from dvc.fs import LocalFileSystem
from dvc.repo import Repo
from dvc.utils.serialize import dumps_yaml, parse_yaml

from sr.storage import atomic_write_text

TAIL_LINES = 30  # how much of a failed command's output goes into the error
# DVC takes a repo-wide lock for each command: this process runs its dvc commands (and dvc.lock merges) one at a time.
REPO_LOCK = threading.Lock()


def run_dvc(args: list[str], repo: Path, log=None, env: dict[str, str] | None = None) -> list[str]:
    """Run `dvc ARGS` in `repo`, sending each output line to `log` as it comes; raise with the last lines on failure."""
    # This interpreter's bin folder first on PATH, so `dvc` and the stages' `python` are the project venv's even when
    # it is not activated; unbuffered Python, so stage lines reach the Prefect log as they are printed.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, **(env or {}), "PATH": path, "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
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


def only_missing_data(changes: list) -> bool:
    """`dvc status` found nothing but absent files: what a stage built elsewhere looks like here."""
    return all(
        isinstance(change, dict) and set(change) <= {"changed deps", "changed outs"}
        and all(v in ("deleted", "not in cache") for paths in change.values() for v in paths.values())
        for change in changes
    )


def up_to_date(stage: str, repo: Path, data_elsewhere: bool) -> bool:
    """DVC's verdict. With stages placed on pools, outputs may live only in the DVC remote; then DVC's own
    `--allow-missing` rule decides (a missing file counts as unchanged when dvc.lock still agrees with the stage that
    writes it), without fetching anything."""
    status = run_dvc(["status", "--json", stage], repo)  # one JSON line, after any warnings
    changes = json.loads(status[-1] if status else "{}")
    if changes == {}:
        return True
    if not data_elsewhere or not only_missing_data(changes.get(stage, [])):
        return False
    dry = run_dvc(["repro", "--dry", "--allow-missing", stage], repo)
    return f"Stage '{stage}' didn't change, skipping" in dry


@dataclass(frozen=True)
class Out:
    path: str
    cached: bool
    md5: str | None  # as dvc.lock records it; None before the stage was first built


@dataclass(frozen=True)
class Stage:
    name: str
    deps: tuple[str, ...]
    outs: tuple[Out, ...]


def stages(repo: Path) -> dict[str, Stage]:
    """Every pipeline stage of dvc.yaml (foreach expanded), with its outputs' hashes from dvc.lock."""
    with Repo(str(repo)) as dvc_repo:
        return {
            s.name: Stage(  # not s.addressing: that is relative to the current directory
                s.name,
                tuple(d.def_path for d in s.deps),
                tuple(Out(o.def_path, o.use_cache, o.hash_info.value if o.hash_info else None) for o in s.outs),
            )
            for s in dvc_repo.index.stages
            if s.cmd
        }


def overlaps(a: str, b: str) -> bool:
    """One path is the other or lies inside it: a dep `models` reads the outputs `models/teacher`, ..."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def inputs(stage: str, graph: dict[str, Stage]) -> list[tuple[str, Out]]:
    """(producing stage, output) for every output of another stage that `stage` reads."""
    deps = graph[stage].deps
    return [(s.name, o) for s in graph.values() if s.name != stage for o in s.outs if any(overlaps(d, o.path) for d in deps)]


def md5_of(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remote_odb(repo: Path):
    """The default DVC remote's object store, the one `dvc push` writes (endpoint and keys from the environment)."""
    return Repo(str(repo)).cloud.get_remote_odb(command="push")


def upload_uncached(repo: Path, outs: list[Out], log) -> None:
    """Put `cache: false` outputs into the remote under their md5 (skipped when already there)."""
    todo = [o for o in outs if not o.cached and o.md5 and md5_of(repo / o.path) == o.md5]
    if todo:
        odb = remote_odb(repo)
        for out in todo:
            odb.add(str(repo / out.path), LocalFileSystem(), out.md5)
            log.info(f"uploaded {out.path} (md5 {out.md5}) to the DVC remote")


def download_uncached(repo: Path, outs: list[Out], log) -> None:
    """Bring `cache: false` outputs whose workspace copy is missing or differs from dvc.lock from the remote."""
    todo = [o for o in outs if not o.cached and o.md5 and md5_of(repo / o.path) != o.md5]
    if not todo:
        return
    odb = remote_odb(repo)
    for out in todo:
        dest = repo / out.path
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            odb.fs.get_file(odb.oid_to_path(out.md5), str(tmp))
        except FileNotFoundError:
            raise RuntimeError(f"{out.path}: md5 {out.md5} is not in the DVC remote") from None
        if md5_of(tmp) != out.md5:
            tmp.unlink()
            raise RuntimeError(f"{out.path}: the DVC remote's copy does not match md5 {out.md5}")
        tmp.replace(dest)
        log.info(f"downloaded {out.path} (md5 {out.md5}) from the DVC remote")


def pull_inputs(repo: Path, stage: str, graph: dict[str, Stage], log) -> None:
    """Make exactly the data `stage` reads match dvc.lock: cached outputs by `dvc pull`, the others by md5."""
    found = inputs(stage, graph)
    # a dep inside an output (`data/raw/manifest.jsonl`) pulls just that file; one above outputs (`models`) pulls each
    targets = sorted({d if d.startswith(o.path + "/") else o.path
                      for _, o in found if o.cached for d in graph[stage].deps if overlaps(d, o.path)})
    if targets:
        run_dvc(["pull", "--force", *targets], repo, log)  # --force: replace an outdated copy without asking
    download_uncached(repo, [o for _, o in found], log)


def lock_entry(repo: Path, stage: str) -> dict | None:
    lock = repo / "dvc.lock"
    if not lock.exists():
        return None
    return (parse_yaml(lock.read_text(), str(lock)) or {}).get("stages", {}).get(stage)


def merge_lock_entry(repo: Path, stage: str, entry: dict) -> None:
    """Write one stage's entry into dvc.lock as DVC writes it (same YAML dumper), atomically."""
    lock = repo / "dvc.lock"
    data = parse_yaml(lock.read_text(), str(lock)) if lock.exists() else None
    data = data or {"schema": "2.0", "stages": {}}
    data.setdefault("stages", {})[stage] = entry
    atomic_write_text(lock, dumps_yaml(data))
