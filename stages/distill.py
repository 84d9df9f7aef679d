"""DVC stage `distill@<recipe>`: distill the teacher into a one-step student (sinsr, tadsr or colearn)."""

from __future__ import annotations

import time
from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run

PARAMS = ["seed", "distill"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--recipe", required=True, choices=["sinsr", "tadsr", "colearn"])
    ap.add_argument("--teacher", type=Path, default=Path("models/teacher"))
    ap.add_argument("--trajectories", type=Path, default=Path("data/trajectories"), help="cached teacher targets")
    ap.add_argument("--shards", type=Path, default=Path("data/shards"), help="val shards (and train, when online)")
    ap.add_argument("--out", type=Path, help="student model folder (default models/student-<recipe>)")
    ap.add_argument("--work", type=Path, default=Path("checkpoints/distill"), help="checkpoints and sample grids")
    ap.add_argument("--metrics", type=Path, help="default metrics/train-<recipe>.json")
    ap.add_argument("--curves", type=Path, help="default plots/distill-<recipe>.csv")
    ap.add_argument("--torch-home", type=Path, default=Path(".torch"), help="offline LPIPS weights, if provisioned")
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)
    recipe = args.recipe
    if recipe not in p.distill.recipes:
        raise ValueError(f"{args.params}: distill.recipes {p.distill.recipes} does not enable --recipe {recipe}")

    from sr.data.shards import iter_samples, shard_paths
    from sr.data.trajectories import trajectory_shards
    from sr.models.build import load_model_dir
    from sr.train.distill import evaluate_student, train_distill

    distill, seed = p.distill, p.seed
    teacher = load_model_dir(args.teacher)
    data = shard_paths(args.shards, "train") if distill.targets == "online" else trajectory_shards(args.trajectories)
    val = list(iter_samples(shard_paths(args.shards, "val")))
    began = time.perf_counter()
    student = train_distill(
        recipe, distill, teacher, seed, data, args.out or Path(f"models/student-{recipe}"), args.work,
        args.curves or Path(f"plots/distill-{recipe}.csv"), grid_samples=val[:4],
        samples_dir=args.work / f"samples-{recipe}",
    )
    seconds = round(time.perf_counter() - began, 1)
    metrics = evaluate_student(
        student, teacher, val, seed, args.metrics or Path(f"metrics/train-{recipe}.json"), args.torch_home,
        distill.val_batch_size, extra={"recipe": recipe, "train_steps": distill.train.steps},
    )
    # Wall-clock time stays out of the metrics file: dvc.lock hashes it, and it must not change between reruns.
    print(
        f"distill {recipe}: {distill.train.steps} steps in {seconds} s; val PSNR(Y) one-step {metrics['psnr_y_student']:.2f} dB, teacher "
        f"{metrics['psnr_y_teacher']:.2f} dB ({teacher.diffusion.steps} steps), bicubic {metrics['psnr_y_bicubic']:.2f} dB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError))
