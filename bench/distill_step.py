"""Seconds per distillation step for each recipe, and the share of each step spent waiting for data (goal < 5%).

Runs the real trainer for a few steps per recipe on the pipeline's artifacts (after `dvc repro trajectories`):

    python -m bench.distill_step --steps 12 --warmup 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from sr.config import load_params


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--teacher", type=Path, default=Path("models/teacher"))
    ap.add_argument("--trajectories", type=Path, default=Path("data/trajectories"))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2, help="first steps left out (worker start, allocator warm-up)")
    ap.add_argument("--recipes", nargs="*", default=["sinsr", "tadsr", "colearn"])
    args = ap.parse_args(argv)

    from sr.models.resshift import ResShiftModel
    from sr.train.distill import train_distill
    from sr.train.trajectories import trajectory_shards

    params = load_params(args.params)
    shards = trajectory_shards(args.trajectories)
    rows = []
    for recipe in args.recipes:
        p = params.distill.model_copy(update={
            "train": params.distill.train.model_copy(update={"steps": args.steps, "ckpt_every": 10**9}),
        })  # fmt: skip
        stats: list[dict[str, float]] = []
        with tempfile.TemporaryDirectory() as tmp:
            train_distill(recipe, p, ResShiftModel.from_pretrained(args.teacher), params.seed, shards, Path(tmp) / "student",
                          Path(tmp) / "work", Path(tmp) / "curves.csv", on_step=lambda step, s, stats=stats: stats.append(s))
        timed = stats[args.warmup:]
        step_s = statistics.mean(s["step_s"] for s in timed)
        wait = sum(s["data_s"] for s in timed) / sum(s["step_s"] for s in timed)
        rows.append((recipe, step_s, wait))
    t = params.distill.train
    print(f"\nbatch {t.batch_size} x accum {t.grad_accum}, {args.steps - args.warmup} timed steps, "
          f"{t.num_workers} loader worker(s)")
    print(f"{'recipe':<10}{'s/step':>10}{'vs sinsr':>10}{'data wait':>11}")
    for recipe, step_s, wait in rows:
        print(f"{recipe:<10}{step_s:>10.3f}{step_s / rows[0][1]:>9.2f}x{100 * wait:>10.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
