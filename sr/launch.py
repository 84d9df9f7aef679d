"""How a training stage runs as several processes.

`SR_PROCESSES=N` (environment, default 1) runs a training stage (teacher, distill@*, osediff, baseline) as N processes
under torchrun: DDP over NCCL on GPUs, over gloo on CPU. The environment, not params.yaml, carries it because it is a
property of the machine, like the thread count (sr/threads.py): changing it changes no `dvc.lock` hash, since N
processes train what one process trains (sr/train/loop.py). Each process takes its share of the thread count.
Standard library only: this runs before torch is imported.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PROCESSES_ENV = "SR_PROCESSES"


def process_count() -> int:
    value = os.environ.get(PROCESSES_ENV, "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{PROCESSES_ENV}={value!r}: expected a whole number of processes, at least 1")
    return int(value)


def main_process() -> bool:
    """True in the one process that writes a stage's outputs (rank 0, or the only process)."""
    return os.environ.get("RANK", "0") == "0"


def _relaunch(processes: int, threads: int) -> None:
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


def launch(processes: int, threads: int) -> None:
    """In a torchrun worker: die with the launcher. Otherwise, with several processes asked for: become torchrun."""
    if "LOCAL_RANK" in os.environ:
        _die_with_launcher()
    elif processes > 1:
        _relaunch(processes, threads)
