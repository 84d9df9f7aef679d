"""What every stage shares: the --params argument, turning known user errors into one line, and the launch of
several training processes.

`SR_PROCESSES=N` (environment, default 1) runs a training stage (teacher, distill@*, osediff) as N processes under
torchrun: DDP over NCCL on GPUs, over gloo on CPU. The environment, not params.yaml, carries it because it is a
property of the machine, like the thread count (sr/threads.py): changing it changes no `dvc.lock` hash, since N
processes train what one process trains (sr/train/loop.py). Each process takes its share of the thread count.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return p


def training_outputs(ap: argparse.ArgumentParser, out: str, work: str, metrics: str, curves: str) -> None:
    """The paths every training stage writes: model folder, checkpoints (for resume), val metrics, curves."""
    ap.add_argument("--out", type=Path, default=Path(out), help="the model folder")
    ap.add_argument("--work", type=Path, default=Path(work), help="checkpoints for resume, caches")
    ap.add_argument("--metrics", type=Path, default=Path(metrics), help="val metrics (json)")
    ap.add_argument("--curves", type=Path, default=Path(curves), help="training curves (csv, for dvc plots)")


PROCESSES_ENV = "SR_PROCESSES"


def process_count() -> int:
    value = os.environ.get(PROCESSES_ENV, "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{PROCESSES_ENV}={value!r}: expected a whole number of processes, at least 1")
    return int(value)


def main_process() -> bool:
    """True in the one process that writes a stage's outputs (rank 0, or the only process)."""
    return os.environ.get("RANK", "0") == "0"


def _launch(processes: int, threads: int) -> None:
    """Replace this process by torchrun running this stage's module with the same arguments, N times."""
    module = sys.modules["__main__"].__spec__.name  # stages are run as `python -m stages.<name>`
    os.environ["SR_THREADS"] = str(max(1, threads // processes))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", module, *sys.argv[1:]]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def _die_with_launcher() -> None:
    """A worker of a killed torchrun would train on, orphaned, and race the rerun for the checkpoint folder: ask
    Linux to kill it when its parent dies (and check the parent did not die first)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() == 1:
            os._exit(1)


def run(main: Callable[[list[str] | None], int], *user_errors: type[BaseException], trains: bool = False) -> int:
    """Run a stage from the command line. A user error (bad params, bad source, unreachable S3, a missing input)
    prints one line and exits 2; anything else is a bug and keeps its traceback. A training stage (`trains`) runs as
    `SR_PROCESSES` processes."""
    from sr import threads

    try:
        count, processes = threads.configure(), process_count() if trains else 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if "LOCAL_RANK" in os.environ:  # a torchrun worker
        _die_with_launcher()
    elif processes > 1:
        _launch(processes, count)
    # threads.configure() ran before any stage imports torch: sr/threads.py says why
    from sr.config import ParamsError
    from sr.storage import StorageError

    try:
        return main(None)
    except (ParamsError, StorageError, FileNotFoundError, *user_errors) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
