"""DVC stage `osediff`: LoRA-tune a Stable-Diffusion-format model into a one-step SR generator (OSEDiff)."""

from __future__ import annotations

from pathlib import Path

from sr.config import open_params
from stages._cli import main_process, parser, run, training_outputs

PARAMS = ["seed", "degrade.scale", "osediff"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--shards", type=Path, default=Path("data/shards"))
    training_outputs(ap, "models/student-osediff", "checkpoints/osediff", "metrics/train-osediff.json",
                     "plots/osediff.csv")
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)

    from sr.data.shards import iter_samples, shard_paths
    from sr.eval.metrics import Metrics
    from sr.eval.scoring import osediff_report, osediff_validator
    from sr.pretrained import default_torch_home
    from sr.storage import atomic_write_json
    from sr.train.osediff import train_osediff

    torch_home, scale = default_torch_home(), p.degrade.scale
    val = list(iter_samples(shard_paths(args.shards, "val")))
    validate, results = osediff_validator(val, scale, Metrics(torch_home))
    train_osediff(p.osediff, p.seed, scale, shard_paths(args.shards, "train"), args.out, args.work, args.curves,
                  torch_home, validate if main_process() else None)
    if not main_process():
        return 0
    report = osediff_report(results, p.osediff.train.steps, len(val))
    atomic_write_json(args.metrics, report)
    print("osediff: val " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(report.items()) if k.startswith(("psnr", "lp"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError, trains=True))
