"""DVC stage `teacher`: train the ResShift teacher on the train shards, or import official weights; score it on val."""

from __future__ import annotations

from pathlib import Path

from sr.config import open_params
from stages._cli import main_process, parser, run, training_outputs

PARAMS = ["seed", "degrade.scale", "teacher"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--shards", type=Path, default=Path("data/shards"))
    training_outputs(ap, "models/teacher", "checkpoints/teacher", "metrics/teacher.json", "plots/teacher.csv")
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)
    teacher, scale, seed = p.teacher, p.degrade.scale, p.seed

    from sr.data.shards import iter_samples, shard_paths
    from sr.eval.metrics import Metrics
    from sr.eval.scoring import teacher_report
    from sr.models.resshift import ResShiftModel
    from sr.pretrained import default_torch_home
    from sr.storage import atomic_write_json, atomic_write_text
    from sr.train.teacher import train_teacher

    if teacher.checkpoint:
        if not main_process():
            return 0  # an import trains nothing: one process does it all
        model = ResShiftModel.from_official(teacher, scale, args.work / "cache")
        model.save_pretrained(args.out)
        atomic_write_text(args.curves, "step,loss,lr\n")  # nothing trained: the curves are empty
    else:
        model = train_teacher(teacher, seed, scale, shard_paths(args.shards, "train"), args.out, args.work, args.curves)
        if not main_process():
            return 0
    val = list(iter_samples(shard_paths(args.shards, "val")))
    metrics = teacher_report(model, val, seed, Metrics(default_torch_home()))
    atomic_write_json(args.metrics, metrics)
    print(f"teacher: val PSNR(Y) {metrics['psnr_y_teacher']:.2f} dB vs bicubic {metrics['psnr_y_bicubic']:.2f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError, trains=True))
