"""Two evaluations at once on one machine, against one alone, under the project's thread policy (sr/threads.py) and,
for comparison, under the policy before it (2 busy-waiting OpenMP threads per process).

Each run is the evaluation's own work: the teacher at its T steps and every student of `models/` scored on the first
`--samples` val crops (sr.eval.scoring), in a fresh process. Goal: two at once finish within ~2.5× one alone.

    python bench/concurrency.py --samples 20            # after `make repro`
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = """
import sys
from sr import threads
threads.configure()
from pathlib import Path
from sr.data.shards import iter_samples, shard_paths
from sr.eval import scoring
from sr.eval.metrics import Metrics
from sr.models.loader import load_model, model_type
from sr.pretrained import default_torch_home
models = Path(sys.argv[1])
val = [s for _, s in zip(range(int(sys.argv[3])), iter_samples(shard_paths(Path(sys.argv[2]), "val")))]
methods = {folder.name: scoring.resshift(load_model(folder), 0) for folder in sorted(models.glob("*"))
           if (folder / "config.json").is_file() and model_type(folder) == "resshift"}  # the teacher and students
scoring.score(methods, val, Metrics(default_torch_home()), scoring.MetricSet(crop_border=4), batch_size=1)
"""


def run(count: int, env: dict, args: argparse.Namespace) -> float:
    """Wall seconds until `count` copies started together have all finished."""
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WORK, str(args.models), str(args.shards), str(args.samples)],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(count)]
    if any(proc.wait() for proc in procs):
        raise RuntimeError("an evaluation failed; run it alone to see why")
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=REPO / "models")
    ap.add_argument("--shards", type=Path, default=REPO / "data" / "shards")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--skip-before", action="store_true", help="do not measure the old policy (it is slow)")
    args = ap.parse_args()
    clean = {k: v for k, v in os.environ.items() if k not in ("SR_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                              "MKL_NUM_THREADS")}
    policies = {"now (sr/threads.py)": clean}
    if not args.skip_before:
        policies["before (2 threads, busy-wait)"] = {**clean, "SR_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}
    print(f"{os.cpu_count()} cores; {args.samples} val samples per evaluation")
    for name, env in policies.items():
        alone = run(1, env, args)
        both = run(2, env, args)
        print(f"{name:<32} one alone {alone:7.1f} s   two at once {both:7.1f} s   ratio {both / alone:5.2f} "
              f"(goal <= 2.5)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
