"""DVC stage `baseline`: a compact GAN (Real-ESRGAN's SRVGGNetCompact) trained on the same shards as the students,
the model a user would pick instead of them; scored on val against bicubic."""

from __future__ import annotations

from pathlib import Path

from sr.config import open_params
from stages._cli import main_process, parser, run, training_outputs

PARAMS = ["seed", "degrade.scale", "baseline"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--shards", type=Path, default=Path("data/shards"))
    training_outputs(ap, "models/baseline-srvgg", "checkpoints/baseline", "metrics/train-baseline.json",
                     "plots/baseline.csv")
    ap.add_argument("--torch-home", type=Path, default=Path(".torch"), help="offline LPIPS weights")
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)
    scale = p.degrade.scale

    from sr.data.shards import iter_samples, shard_paths
    from sr.eval.metrics import Metrics
    from sr.eval.scoring import one_step_report
    from sr.pretrained import available_metrics
    from sr.storage import atomic_write_json
    from sr.train.baseline import train_baseline

    model = train_baseline(p.baseline, p.seed, scale, shard_paths(args.shards, "train"), args.out, args.work,
                           args.curves, args.torch_home)
    if not main_process():
        return 0
    val = list(iter_samples(shard_paths(args.shards, "val")))
    lpips = "lpips" in available_metrics(args.torch_home)
    report = one_step_report(model, scale, val, Metrics(args.torch_home), lpips)
    atomic_write_json(args.metrics, {**report, "steps": p.baseline.train.steps})
    print(f"baseline: val PSNR(Y) {report['psnr_y_model']:.2f} dB vs bicubic {report['psnr_y_bicubic']:.2f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError, trains=True))
