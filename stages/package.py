"""DVC stage `package`: pick the student by the rule in params, write the model package and its deterministic
tarball under dist/, and publish it to S3 when `package.publish` is set."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run

PARAMS = ["degrade.scale", "degrade.hq_size", "download.sources", "package"]


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

    from sr.export import export_onnx
    from sr.models.loader import load_model
    from sr.models.resshift import ResShiftModel
    from sr.package import (
        LINEAGE_PATHS,
        SELECTION_FILE,
        build_package,
        dvc_lock_hashes,
        select_student,
        selection_record,
    )
    from sr.publish import publish

    if not args.metrics.is_file():
        raise FileNotFoundError(f"{args.metrics}: no evaluation report; run the evaluate stage first")
    report = json.loads(args.metrics.read_text())
    student = select_student(report, pk.dataset, pk.metric, pk.max_psnr_drop_db, pk.students)
    selection = selection_record(report, student, pk.dataset, pk.metric, pk.max_psnr_drop_db, pk.name, pk.version,
                                 pk.students)
    # No git commit: it changes with every commit, even when nothing the package is built from did.
    lineage = dvc_lock_hashes(args.lock, [*LINEAGE_PATHS, f"{args.models.as_posix()}/{student}"])
    grids = sorted(args.plots.glob("grid-*.png"))
    datasets = ", ".join(source.kind for source in p.download.sources)
    card = {"license_": pk.license, "author": pk.author, "training": {"hq_size": p.degrade.hq_size, "dataset": datasets}}
    with tempfile.TemporaryDirectory(prefix="package-") as scratch:
        model = load_model(args.models / student)
        onnx = [export_onnx(model, Path(scratch) / "model.onnx")] if pk.onnx and isinstance(model, ResShiftModel) else []
        tarball = build_package(args.models / student, selection, report, grids, lineage, p.degrade.scale, args.out,
                                onnx, card)
    print(f"package: {student} -> {tarball}")
    if pk.publish:
        publish(tarball, pk.publish, pk.name, pk.version, args.out / f"{pk.name}-{pk.version}" / SELECTION_FILE)
        print(f"package: published {pk.name}@{pk.version} to {pk.publish}")
    return 0


if __name__ == "__main__":
    from sr.package import PackageError

    raise SystemExit(run(main, ValueError, PackageError))
