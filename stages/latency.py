"""DVC stage `latency`: every evaluated method timed round-robin on one LQ image, on this machine, now.

The only stage whose output depends on the machine and the moment; it is kept apart so every other stage's
dvc.lock hashes repeat run to run. Nothing downstream depends on it."""

from __future__ import annotations

import json
from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run
from stages.evaluate import add_model_and_data_args, model_dirs

PARAMS = ["seed", "degrade", "evaluate", "distill.recipes"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    add_model_and_data_args(ap)
    ap.add_argument("--report", type=Path, default=Path("metrics/eval.json"), help="the evaluate stage's report")
    ap.add_argument("--metrics", type=Path, default=Path("metrics/latency.json"))
    ap.add_argument("--plots", type=Path, default=Path("plots/eval"), help="quality_latency.csv goes here")
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)
    evaluate_p, degrade, seed = p.evaluate, p.degrade, p.seed
    if not args.report.is_file():
        raise FileNotFoundError(f"{args.report}: no evaluation report; run the evaluate stage first")
    report = json.loads(args.report.read_text())

    from sr.data.shards import shard_paths
    from sr.eval.evaluate import latency_input, measure_latency, paper_input

    focus = report["_info"]["focus_dataset"]
    sample = latency_input(focus, shard_paths(args.shards, "val"), args.raw, evaluate_p, degrade, seed)
    paper = paper_input(args.raw, evaluate_p.latency_paper_side, degrade.scale)
    latency = measure_latency(args.teacher, model_dirs(args.models, p.distill.recipes), sample, paper, report,
                              evaluate_p, seed, degrade.scale, args.metrics, args.plots)
    info = latency["_info"]
    for name, entry in latency.items():
        if not name.startswith("_"):
            print(f"{name:>16}: {entry['latency_s'] * 1000:8.1f} ms  x{entry['speedup_vs_teacher']:.1f}   paper size "
                  f"{entry['latency_s_paper'] * 1000:9.1f} ms  x{entry['speedup_vs_teacher_paper']:.1f}")
    print(
        f"speedup vs {info['teacher']}; timed on {focus}[0] ({sample['key']}, LQ {tuple(sample['lq'].shape[-2:])}), "
        f"{info['threads']} threads"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError))
