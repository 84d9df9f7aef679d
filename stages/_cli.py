"""What every stage shares: the --params argument, turning known user errors into one line, and the launch of
several training processes (sr/launch.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from sr.launch import launch, main_process, process_count

__all__ = ["main_process", "parser", "run", "training_outputs"]


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
    launch(processes, count)
    # threads.configure() ran before any stage imports torch: sr/threads.py says why
    from sr.config import ParamsError
    from sr.storage import StorageError

    try:
        return main(None)
    except (ParamsError, StorageError, FileNotFoundError, *user_errors) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
