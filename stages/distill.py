"""DVC stage `distill@<recipe>`: distill the teacher into a one-step student (sinsr, tadsr or colearn)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import get_args

from sr.config import DistillRecipe, open_params
from stages._cli import main_process, parser, run, training_outputs

SHARED = ["seed", "distill.targets", "distill.sample_every", "distill.val_batch_size", "distill.image", "distill.train"]


def params(recipe: str) -> list[str]:
    """What `distill@<recipe>` reads: the shared keys and its own section (dvc.yaml: `distill.${item}`)."""
    return [*SHARED, f"distill.{recipe}"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--recipe", required=True, choices=get_args(DistillRecipe))
    ap.add_argument("--teacher", type=Path, default=Path("models/teacher"))
    ap.add_argument("--trajectories", type=Path, default=Path("data/trajectories"), help="cached teacher targets")
    ap.add_argument("--shards", type=Path, default=Path("data/shards"), help="val shards (and train, when online)")
    training_outputs(ap, "models/student-<recipe>", "checkpoints/distill", "metrics/train-<recipe>.json",
                     "plots/distill-<recipe>.csv")
    ap.add_argument("--torch-home", type=Path, default=Path(".torch"), help="offline LPIPS weights, if provisioned")
    args = ap.parse_args(argv)
    recipe = args.recipe
    out, metrics, curves = (Path(str(path).replace("<recipe>", recipe)) for path in (args.out, args.metrics, args.curves))
    p = open_params(args.params, params(recipe))
    distill, seed = p.distill, p.seed

    from sr.data.shards import iter_samples, shard_paths
    from sr.eval.metrics import Metrics
    from sr.eval.scoring import student_report
    from sr.models.resshift import ResShiftModel
    from sr.pretrained import available_metrics
    from sr.storage import atomic_write_json
    from sr.train.distill import train_distill
    from sr.train.trajectories import trajectory_shards

    teacher = ResShiftModel.from_pretrained(args.teacher)
    data = shard_paths(args.shards, "train") if distill.targets == "online" else trajectory_shards(args.trajectories)
    val = list(iter_samples(shard_paths(args.shards, "val")))
    began = time.perf_counter()
    student = train_distill(
        recipe, distill, teacher, seed, data, out, args.work, curves, grid_samples=val[:4],
        samples_dir=args.work / f"samples-{recipe}", torch_home=args.torch_home,
    )
    seconds = round(time.perf_counter() - began, 1)
    if not main_process():
        return 0
    lpips = "lpips" in available_metrics(args.torch_home)
    m = student_report(student, teacher, val, seed, Metrics(args.torch_home), distill.val_batch_size, lpips)
    # Wall-clock time stays out of the metrics file: dvc.lock hashes it, and it must not change between reruns.
    atomic_write_json(metrics, {**m, "recipe": recipe, "train_steps": distill.train.steps})
    print(f"distill {recipe}: {distill.train.steps} steps in {seconds} s; val PSNR(Y) one-step "
          f"{m['psnr_y_student']:.2f} dB, teacher {m['psnr_y_teacher']:.2f} dB, bicubic {m['psnr_y_bicubic']:.2f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError, trains=True))
