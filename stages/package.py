"""DVC stage `package`: pick the student by the rule in params, write the model package and its deterministic
tarball under dist/, and publish it to S3 when `package.publish` is set."""

from __future__ import annotations

import json
from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run

PARAMS = ["seed", "degrade", "teacher", "distill", "osediff", "evaluate", "package"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--models", type=Path, default=Path("models"), help="where student-<recipe>/ folders are")
    ap.add_argument("--metrics", type=Path, default=Path("metrics/eval.json"), help="the evaluate stage's report")
    ap.add_argument("--plots", type=Path, default=Path("plots/eval"), help="the evaluate stage's grid PNGs")
    ap.add_argument("--lock", type=Path, default=Path("dvc.lock"), help="for the lineage hashes in the model card")
    ap.add_argument("--out", type=Path, default=Path("dist"))
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)
    pk = p.package
    card_params = {"seed": p.seed, **{k: getattr(p, k).model_dump(mode="json") for k in PARAMS[1:]}}

    from sr.package import LINEAGE_PATHS, build_package, dvc_lock_hashes, select_student

    if not args.metrics.is_file():
        raise FileNotFoundError(f"{args.metrics}: no evaluation report; run the evaluate stage first")
    report = json.loads(args.metrics.read_text())
    student = select_student(report, pk.dataset, pk.metric, pk.max_psnr_drop_db)
    student_dir = args.models / student
    # No git commit: it changes with every commit, even when nothing the package is built from did.
    lineage = {"dvc": dvc_lock_hashes(args.lock, [*LINEAGE_PATHS, f"{args.models.as_posix()}/{student}"])}
    rule = {"dataset": pk.dataset, "metric": pk.metric, "max_psnr_drop_db": pk.max_psnr_drop_db}
    grids = sorted(args.plots.glob("grid-*.png"))
    tarball = build_package(student_dir, student, report, rule, card_params, grids, lineage, pk.name, pk.version,
                            args.out)
    print(f"package: {student} -> {tarball}")
    if pk.publish:
        from flows.artifacts import PackageError, publish

        try:
            publish(tarball, pk.publish, pk.name, pk.version, args.metrics)
        except PackageError as exc:
            raise ValueError(str(exc)) from None
        print(f"package: published {pk.name}@{pk.version} to {pk.publish}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError))
