"""The model package: pick a student by a rule on the evaluation, then write `dist/<name>-<version>/` (the student's
folder files, a model card, eval.json, the comparison grids, SHA256SUMS) and a byte-deterministic
`dist/<name>-<version>.tar.gz`: sorted members, mtime 0, uid/gid 0, no user names, gzip mtime 0 and no file name,
so the same inputs always give the same bytes (and the same sha256) on any machine.

`unpack_package` is the one way a package is opened (sr-upscale, sr-fetch): every member must stay under the
package's top folder, and every file must match SHA256SUMS, or nothing is used.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from sr.storage import atomic_dir, atomic_write_bytes, materialize

LOWER_IS_BETTER = {"lpips", "niqe", "dists"}
LINEAGE_PATHS = ["data/raw", "data/shards", "models/teacher"]  # plus the chosen student's folder
SELECTION_FILE = "selection.json"
CARD_FILE = "modeldb.json"  # the OpenModelDB-style entry (schema: docs/modeldb.schema.json)
WEIGHT_FILES = {"model.safetensors": ("pytorch", "safetensors"), "lora.safetensors": ("pytorch", "safetensors"),
                "model.onnx": ("onnx", "onnx")}


class PackageError(RuntimeError):
    """A package that is missing, unsafe, corrupt or conflicting: retrying does not help (unlike a StorageError)."""


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class SelectionError(ValueError):
    """No student satisfies the packaging rule, or the rule names something the evaluation lacks."""


def select_student(report: dict[str, Any], dataset: str, metric: str, max_psnr_drop_db: float,
                   allowed: list[str] | None = None) -> str:
    """The student with the best `metric` on `dataset` among those whose PSNR(Y) there is >= the T-step teacher's
    minus `max_psnr_drop_db`, and among `allowed` (names without `student-`; None: all). Ties go to the first name in
    alphabetical order."""
    teacher = report["_info"]["teacher"]
    if dataset not in report[teacher]:
        have = sorted(k for k in report[teacher] if k != "cost")
        raise SelectionError(f"package.dataset: {dataset!r} was not evaluated (evaluated: {', '.join(have)})")
    # rows like "student-x+wavelet" score a student with a colour correction it does not ship: not candidates
    evaluated = sorted(name for name in report if name.startswith("student-") and "+" not in name)
    if not evaluated:
        raise SelectionError("package: the evaluation holds no student (no models/student-* folder was evaluated)")
    students = [s for s in evaluated if allowed is None or s.removeprefix("student-") in allowed]
    if not students:
        raise SelectionError(f"package.students = {allowed}: none was evaluated (evaluated: {', '.join(evaluated)})")
    if metric not in report[teacher][dataset]:
        raise SelectionError(f"package.metric: {metric!r} was not computed on {dataset} "
                             f"(computed: {', '.join(sorted(report[teacher][dataset]))})")
    floor = report[teacher][dataset]["psnr_y"] - max_psnr_drop_db
    qualified = [s for s in students if report[s][dataset]["psnr_y"] >= floor]
    if not qualified:
        got = ", ".join(f"{s} {report[s][dataset]['psnr_y']:.2f}" for s in students)
        raise SelectionError(f"package: no student qualifies: PSNR(Y) on {dataset} must be >= {teacher}'s "
                             f"{report[teacher][dataset]['psnr_y']:.2f} - {max_psnr_drop_db} dB = {floor:.2f}; "
                             f"got {got}")
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    return min(qualified, key=lambda s: (sign * report[s][dataset][metric], s))


# ---------------------------------------------------------------------------------------------------- lineage


def dvc_lock_hashes(lock: Path, paths: list[str]) -> dict[str, str | None]:
    """The md5 dvc.lock pins for each output path (None when the lock is absent or does not list it)."""
    found: dict[str, str | None] = {p: None for p in paths}
    if not lock.is_file():
        return found
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    for stage in stages.values():
        for out in stage.get("outs", []):
            if out.get("path") in found:
                found[out["path"]] = out.get("md5") or out.get("hash")
    return found


# ---------------------------------------------------------------------------------------------------- model card


def _fmt(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "–"


def selection_record(report: dict[str, Any], student: str, dataset: str, metric: str, max_psnr_drop_db: float,
                     name: str, version: str, allowed: list[str] | None = None) -> dict[str, Any]:
    """selection.json: which student the package ships and its score by the rule that chose it (`allowed`: the
    students the rule could pick, None for all). The retrain flow's promotion gate compares this record with the
    published one's."""
    record = {"name": name, "version": version, "student": student, "dataset": dataset, "metric": metric,
              "value": report[student][dataset][metric], "lower_is_better": metric in LOWER_IS_BETTER,
              "max_psnr_drop_db": max_psnr_drop_db}
    return record if allowed is None else {**record, "students": allowed}


def model_card(selection: dict, report: dict, lineage: dict, scale: int, grids: list[str]) -> str:
    name, version, student = selection["name"], selection["version"], selection["student"]
    teacher = report["_info"]["teacher"]
    methods = [m for m in report if not m.startswith("_")]
    lines = [
        f"# {name} {version}", "",
        (f"One-step diffusion super-resolution (×{scale}): **{student}**, distilled from the ResShift teacher "
         f"({teacher})."), "",
        "## Use", "", "```", f"sr-upscale in.png out.png --model {name}-{version}.tar.gz", "```", "",
        "## Selection rule", "",
        (f"Best `{selection['metric']}` on `{selection['dataset']}` among the students "
         + (f"({', '.join(selection['students'])}) " if "students" in selection else "")
         + f"whose PSNR(Y) is at least the teacher's minus {selection['max_psnr_drop_db']} dB: "
         f"{selection['value']:.4f}."), "",
    ]
    for dataset in [d for d in report[teacher] if d != "cost"]:
        lines += [f"## Metrics: {dataset}", "",
                  "| method | PSNR(Y) | SSIM(Y) | LPIPS | NIQE | chroma shift | blockiness | NFE | params |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for m in methods:
            q, c = report[m].get(dataset, {}), report[m]["cost"]
            mark = f"**{m}**" if m == student else m
            lines.append(f"| {mark} | {_fmt(q.get('psnr_y'), 2)} | {_fmt(q.get('ssim_y'), 4)} | "
                         f"{_fmt(q.get('lpips'), 4)} | {_fmt(q.get('niqe'), 2)} | {_fmt(q.get('chroma'), 2)} | "
                         f"{_fmt(q.get('blockiness'), 2)} | {c['nfe']} | {c['params']:,} |")
        lines.append("")
    # Latency depends on the machine, so it is not in the package (whose bytes must repeat run to run).
    lines += ["Latency (machine-dependent, so not in this package): `metrics/latency.json`, the `latency` stage's.", ""]
    notes = report["_info"].get("notes", [])
    if notes:
        lines += ["Notes: " + "; ".join(notes), ""]
    if grids:
        lines += ["## Comparison grids", "", "LQ | bicubic | teacher | students | HQ, zoomed crops below.", ""]
        lines += [f"![{g}]({g})" for g in grids] + [""]
    lines += ["## Lineage", ""]
    lines += [f"- `{path}` (dvc.lock md5): `{md5 or 'not in dvc.lock'}`" for path, md5 in lineage.items()]
    return "\n".join([*lines, ""])


# ---------------------------------------------------------------------------------------------------- archive


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def deterministic_tarball(folder: Path, top: str) -> bytes:
    """tar.gz bytes of `folder` under `top/`: sorted members, normalised metadata, gzip header without time/name."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        entries = [folder, *sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix())]
        for path in entries:
            rel = path.relative_to(folder).as_posix()
            info = tarfile.TarInfo(top if rel == "." else f"{top}/{rel}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def modeldb_card(folder: Path, selection: dict, report: dict, config: dict, license_: str | None, author: str,
                 training: dict) -> dict:
    """The OpenModelDB-style entry of the package in `folder`: architecture, scale, channels, license, every weight
    file as a resource with its size and sha256, the training data and the evaluation of the shipped student."""
    student = selection["student"]
    arch = config.get("arch") or config["model_type"]
    resources = [{"platform": platform, "type": kind, "file": name, "size": (folder / name).stat().st_size,
                  "sha256": sha256_bytes((folder / name).read_bytes()), "urls": []}
                 for name, (platform, kind) in WEIGHT_FILES.items() if (folder / name).is_file()]
    unet = config.get("unet") or {}
    return {
        "name": f"{selection['name']} {selection['version']}",
        "author": author,
        "license": license_,
        "tags": ["diffusion", "one-step", "real-world", config["model_type"]],
        "description": f"One-step diffusion super-resolution x{config['scale']}: {student}, chosen by the best "
                       f"{selection['metric']} on {selection['dataset']}.",
        "architecture": f"{config['model_type']}-{arch}" if arch != config["model_type"] else arch,
        "size": [f"{unet['model_channels']}nf"] if unet else [],
        "scale": config["scale"],
        "inputChannels": 3,
        "outputChannels": 3,
        "sizeMultiple": 1,  # any input size: the exported graph and sr-upscale pad internally
        "resources": resources,
        "trainingHRSize": training["hq_size"],
        "dataset": training["dataset"],
        "metrics": {dataset: {k: v for k, v in values.items() if k in ("psnr_y", "ssim_y", "lpips")}
                    for dataset, values in report[student].items() if dataset != "cost"},
    }


def build_package(student_dir: Path, selection: dict, report: dict, grids: list[Path], lineage: dict, scale: int,
                  dist_dir: Path, extra_files: list[Path] = (), card: dict | None = None) -> Path:
    """Write dist/<name>-<version>/ (replaced whole, atomically) and dist/<name>-<version>.tar.gz; return the tarball.
    `lineage`: output path -> its dvc.lock md5; `extra_files` (e.g. model.onnx) are shipped beside the student's;
    `card`: the modeldb.json fields that do not come from the files (license, author, training)."""
    top = f"{selection['name']}-{selection['version']}"
    final = dist_dir / top
    with atomic_dir(final) as build:
        for path in sorted(student_dir.rglob("*")):
            if path.is_file():
                target = build / path.relative_to(student_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        grid_names = []
        for grid in grids:
            (build / "grids").mkdir(exist_ok=True)
            shutil.copyfile(grid, build / "grids" / grid.name)
            grid_names.append(f"grids/{grid.name}")
        for extra in extra_files:
            shutil.copyfile(extra, build / extra.name)
        (build / "eval.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        (build / SELECTION_FILE).write_text(json.dumps(selection, indent=2, sort_keys=True) + "\n")
        if card is not None:
            config = json.loads((build / "config.json").read_text())
            entry = modeldb_card(build, selection, report, config, **card)
            (build / CARD_FILE).write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
        (build / "README.md").write_text(model_card(selection, report, lineage, scale, grid_names))
        files = sorted(p.relative_to(build).as_posix() for p in build.rglob("*") if p.is_file())
        sums = "".join(f"{sha256_bytes((build / f).read_bytes())}  {f}\n" for f in files)
        (build / "SHA256SUMS").write_text(sums)
    tarball = dist_dir / f"{top}.tar.gz"
    atomic_write_bytes(tarball, deterministic_tarball(final, top))
    return tarball


# ---------------------------------------------------------------------------------------------------- opening


def check_member(member: tarfile.TarInfo, top: str, where: str) -> None:
    """Reject anything that would land outside `top/`: absolute paths, `..`, escaping links (the "data" extraction
    filter then refuses devices and odd permissions)."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or path.parts[:1] != (top,):
        raise PackageError(f"{where}: unsafe path {member.name!r} (everything must be under {top}/)")
    if member.issym() or member.islnk():
        target = path.parent / member.linkname if member.issym() else PurePosixPath(member.linkname)
        resolved = os.path.normpath(str(target))
        if PurePosixPath(member.linkname).is_absolute() or not (resolved + "/").startswith(top + "/"):
            raise PackageError(f"{where}: link {member.name!r} -> {member.linkname!r} points outside {top}/")


def verify_package(root: Path, where: str) -> None:
    """Every file of the unpacked package matches SHA256SUMS, and no file is missing or extra."""
    if not (root / "SHA256SUMS").is_file():
        raise PackageError(f"{where}: no SHA256SUMS in the package")
    sums = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, _, rel = line.partition("  ")  # `sha256sum` format: <hex>, two spaces, relative path
        if len(digest) != 64 or not rel:
            raise PackageError(f"{where}/SHA256SUMS: not a '<sha256>  <path>' line: {line!r}")
        sums[rel] = digest
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()} - {"SHA256SUMS"}
    odd = sorted(files ^ set(sums))  # listed but absent, or present but not listed
    if odd:
        raise PackageError(f"{where}/{odd[0]}: " + ("not in the package" if odd[0] in sums else "not in SHA256SUMS"))
    for rel, digest in sums.items():
        if sha256_file(root / rel) != digest:
            raise PackageError(f"{where}/{rel}: sha256 mismatch: the file is corrupt")


def model_folder(spec: str | os.PathLike[str], cache_dir: Path) -> Path:
    """A local model folder for a folder, a package .tar.gz (verified, unpacked under `cache_dir`), or an s3:// URI
    of either."""
    path = materialize(str(spec), cache_dir)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        cache_dir.mkdir(parents=True, exist_ok=True)
        return unpack_package(path, Path(tempfile.mkdtemp(dir=cache_dir, prefix="package-")))
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{spec}: not a model folder or package (no config.json)")
    return path


def unpack_package(tarball: Path, dest: Path) -> Path:
    """Extract a package tarball (one top folder) into `dest`, check it against its SHA256SUMS, return the folder.
    A bad member names the tarball; a bad file names its path inside the package (`<name>-<version>/<file>`)."""
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            members = tf.getmembers()
            if not members:
                raise PackageError(f"{tarball}: empty archive")
            top = members[0].name.split("/")[0]
            for member in members:
                check_member(member, top, str(tarball))
            tf.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:  # a truncated archive, a device file...
        raise PackageError(f"{tarball}: cannot unpack: {exc}") from None
    verify_package(dest / top, top)
    return dest / top
