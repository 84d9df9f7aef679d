"""DVC stage `evaluate`: bicubic, the teacher at T and fewer steps, every one-step student and the GAN baseline, on
the val shards and the held-out photos: quality, NFE and parameters (latency: the `latency` stage)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run

PARAMS = ["seed", "degrade", "evaluate", "distill.recipes"]


BASELINE = "baseline-srvgg"


def model_dirs(models: Path, recipes: list[str]) -> dict[str, Path]:
    """method name -> folder of every model the pipeline trains: a student per distill recipe, OSEDiff's, and the
    GAN baseline."""
    dirs = {f"student-{name}": models / f"student-{name}" for name in [*recipes, "osediff"]}
    dirs[BASELINE] = models / BASELINE
    missing = [str(folder) for folder in dirs.values() if not (folder / "config.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no model folder; run its stage first")
    return dirs


def add_model_and_data_args(ap: argparse.ArgumentParser) -> None:
    """The inputs `evaluate` and `latency` share: the models and the datasets they run on."""
    ap.add_argument("--teacher", type=Path, default=Path("models/teacher"))
    ap.add_argument("--models", type=Path, default=Path("models"),
                    help="where the student-<name>/ and baseline-srvgg/ folders are looked up")
    ap.add_argument("--shards", type=Path, default=Path("data/shards"), help="val-NNNNNN.tar shards")
    ap.add_argument("--raw", type=Path, default=Path("data/raw"), help="manifest.jsonl + images/ (held-out photos)")


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    add_model_and_data_args(ap)
    ap.add_argument("--metrics", type=Path, default=Path("metrics/eval.json"))
    ap.add_argument("--plots", type=Path, default=Path("plots/eval"), help="CSVs for dvc plots and grid PNGs")
    ap.add_argument("--torch-home", type=Path, default=Path(".torch"), help="offline LPIPS / NIQE weights")
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)
    evaluate_p, degrade, seed = p.evaluate, p.degrade, p.seed

    from sr.data.shards import shard_paths
    from sr.eval.evaluate import evaluate

    report = evaluate(args.teacher, model_dirs(args.models, p.distill.recipes), shard_paths(args.shards, "val"),
                      args.raw, evaluate_p, degrade, seed, args.torch_home, args.metrics, args.plots)
    info = report["_info"]
    focus, teacher = info["focus_dataset"], info["teacher"]
    for name, entry in report.items():
        if name.startswith("_"):
            continue
        q, c = entry.get(focus, {}), entry["cost"]
        print(f"{name:>16}: {focus} PSNR(Y) {q.get('psnr_y', float('nan')):6.2f} dB  LPIPS "
              f"{q.get('lpips', float('nan')):.4f}  NFE {c['nfe']:>2}  params {c['params']:,}"
              + ("  (teacher)" if name == teacher else ""))
    for note in info["notes"]:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError))
