"""DVC stage `teacher`: train the ResShift teacher on the train shards, or import official weights."""

from __future__ import annotations

from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run

PARAMS = ["seed", "degrade.scale", "teacher"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--shards", type=Path, default=Path("data/shards"))
    ap.add_argument("--out", type=Path, default=Path("models/teacher"))
    ap.add_argument("--work", type=Path, default=Path("checkpoints/teacher"), help="checkpoints for resume")
    ap.add_argument("--metrics", type=Path, default=Path("metrics/teacher.json"))
    ap.add_argument("--curves", type=Path, default=Path("plots/teacher.csv"))
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)

    from sr.data.shards import shard_paths
    from sr.train.teacher import evaluate_teacher, import_teacher, train_teacher

    teacher, scale, seed = p.teacher, p.degrade.scale, p.seed
    if teacher.checkpoint:
        model = import_teacher(teacher, scale, args.out, args.work / "cache")
        args.curves.parent.mkdir(parents=True, exist_ok=True)
        args.curves.write_text("step,loss,lr\n")
    else:
        model = train_teacher(teacher, seed, scale, shard_paths(args.shards, "train"), args.out, args.work, args.curves)
    metrics = evaluate_teacher(model, shard_paths(args.shards, "val"), seed, args.metrics)
    print(f"teacher: val PSNR(Y) {metrics['psnr_y_teacher']:.2f} dB vs bicubic {metrics['psnr_y_bicubic']:.2f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError))
