"""The evaluation: every method on every dataset, quality and cost measured in one process on one machine.

Methods: bicubic; the teacher at its T steps (deterministic sampler); the same teacher respaced to fewer steps
without any distillation (`ResShift.respaced`, rows `teacher-K-linspace`); every student, at one step, as it ships
and with each other colour correction of `evaluate.color_fix` (rows `student-x+wavelet`); the GAN baseline. Each
image's start noise ε is drawn from (seed, "val-noise", key), the draw the teacher and distill stages use, so all
ResShift-family methods start from the same x_T.

Datasets: `val` (the val shards' Real-ESRGAN crops) and, from the held-out photos of data/raw, center crops with one
fixed, seeded draw each of the Real-ESRGAN degradation (`heldout-realesrgan`) and of the mild one
(`heldout-mild`), and with bicubic ×scale only (`heldout-bicubic`). Besides PSNR/SSIM(Y), LPIPS and NIQE, every
output gets a chroma shift and a blockiness against its HQ (sr.eval.metrics).

Output (`metrics/eval.json`): {method: {dataset: {metric: mean}, "cost": {nfe, params}}, "_info": {teacher,
focus_dataset, datasets, notes}}. Every value is a function of the inputs, so dvc.lock hashes repeat run to run.
Wall-clock latency is machine-dependent and lives apart: `measure_latency` (the `latency` stage) writes
`metrics/latency.json` {method: {latency_s, speedup_vs_teacher}, "_info": {teacher, latency_input, threads}} and the
quality-vs-latency plot, timing every method on the first sample of the focus dataset (`latency_input` names it).
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sr.config import ColorFix, DegradeParams, EvaluateParams
from sr.data.degradations import bicubic_lq, mild_degrade
from sr.data.degradations import degrade as real_esrgan
from sr.data.images import load_rgb8
from sr.data.shards import Sample, iter_samples
from sr.eval import scoring
from sr.eval.grids import comparison_grid
from sr.eval.metrics import Metrics
from sr.eval.timing import count_params, interleaved_latencies
from sr.models.colorfix import color_fix
from sr.models.loader import load_model
from sr.models.osediff import OSEDiffStudent
from sr.models.resshift import ResShiftModel, bicubic_up
from sr.pretrained import available_metrics
from sr.seeds import sample_seed
from sr.storage import atomic_write_text

# the lower the better; every other metric: the higher the better
LOWER_IS_BETTER = {"lpips", "niqe", "dists", "chroma", "blockiness"}


@dataclass
class Method:
    """`run(lq, keys)`: a batch of LQ in [-1,1] and the samples' keys (they seed ε) -> HQ estimates in [-1,1]."""

    name: str
    nfe: int
    params: int
    run: scoring.Upscaler  # the model's own output, before any colour correction
    color_fix: ColorFix = "none"  # the correction the model ships (an OSEDiff student's config.json)


def student_method(name: str, folder: Path, seed: int) -> Method:
    """A model folder of any type (a student, the baseline), at its own inference steps."""
    model = load_model(folder)
    steps, size = model.config.inference_steps, count_params([model])
    if isinstance(model, ResShiftModel):
        return Method(name, steps, size, scoring.resshift(model, seed))
    shipped: ColorFix = "none"
    if isinstance(model, OSEDiffStudent):  # scored raw here, its correction applied by `with_color_fixes`
        shipped, model.config = model.config.color_fix, model.config.model_copy(update={"color_fix": "none"})
    return Method(name, steps, size, lambda lq, keys: model(lq).clamp(-1, 1), shipped)


def with_color_fixes(methods: list[Method], kinds: list[ColorFix], scale: int, reuse: bool = True) -> list[Method]:
    """Each student as it ships, followed by one row per other correction in `kinds` (`student-x+wavelet`); other
    methods unchanged. With `reuse`, a student's variants reuse the output its own row computed for the same batch
    (scoring runs the methods in order on each batch), so they cost only the correction; timing must not reuse."""
    out = []
    for m in methods:
        if not m.name.startswith("student-"):
            out.append(m)
            continue
        last: dict = {}

        def raw(lq: torch.Tensor, keys: list[str], m: Method = m, last: dict = last) -> torch.Tensor:
            if not reuse:
                return m.run(lq, keys)
            if last.get("lq") is not lq:
                last.update(lq=lq, out=m.run(lq, keys))
            return last["out"]

        def fixed(kind: ColorFix, raw=raw) -> scoring.Upscaler:
            return lambda lq, keys: color_fix(raw(lq, keys), bicubic_up(lq, scale).clamp(-1, 1), kind)

        out.append(Method(m.name, m.nfe, m.params, fixed(m.color_fix)))
        out += [Method(f"{m.name}+{kind}", m.nfe, m.params, fixed(kind)) for kind in kinds if kind != m.color_fix]
    return out


def build_methods(teacher_dir: Path, student_dirs: dict[str, Path], fewer_steps: list[int], seed: int) -> list[Method]:
    teacher = ResShiftModel.from_pretrained(teacher_dir)
    steps, size = teacher.diffusion.steps, count_params([teacher])
    methods = [Method("bicubic", 0, 0, scoring.bicubic(teacher.scale)),
               Method(f"teacher-{steps}", steps, size, scoring.resshift(teacher, seed, steps))]
    for k in sorted(set(fewer_steps) - {steps}, reverse=True):
        if k > steps:
            raise ValueError(f"evaluate.teacher_steps: {k} exceeds the teacher's {steps} steps")
        # "-linspace": our respacing (docs/methods.md §1.7), not the official code's {⌊iT/K⌋}
        methods.append(Method(f"teacher-{k}-linspace", k, size, scoring.resshift(teacher, seed, k)))
    for name, folder in student_dirs.items():
        methods.append(student_method(name, folder, seed))
    return methods


# ---------------------------------------------------------------------------------------------------- datasets


def val_dataset(shards: list[Path], limit: int | None) -> list[Sample]:
    samples = []
    for sample in iter_samples(shards):
        samples.append({"key": sample["key"], "hq": sample["hq"], "lq": sample["lq"]})
        if limit is not None and len(samples) >= limit:
            break
    return samples


def heldout_datasets(raw_dir: Path, p: EvaluateParams, degrade: DegradeParams, seed: int) -> dict[str, list[Sample]]:
    """Center crops of the `val`-split photos, degraded once each (Real-ESRGAN, then mild, each with a generator
    seeded by the photo's id), and bicubic-only."""
    manifest = raw_dir / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    real, mild, bicubic = [], [], []
    crop = p.heldout_crop
    unit = 8 * degrade.scale  # keeps every latent size a multiple of the denoiser's downsampling
    for row in rows:
        if row["split"] != "val":
            continue
        img = load_rgb8(raw_dir / "images" / f"{row['id']}.png", f"{raw_dir}/images/{row['id']}.png")
        size = min(crop, img.width, img.height) // unit * unit
        if size == 0:
            continue
        left, top = (img.width - size) // 2, (img.height - size) // 2
        array = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
        hq01 = torch.from_numpy(array).permute(2, 0, 1).contiguous()
        generator = torch.Generator().manual_seed(sample_seed(seed, "heldout", row["id"]))
        lq_real = real_esrgan(hq01, degrade.model_copy(update={"usm_sharpen": False}), generator)[0]
        generator = torch.Generator().manual_seed(sample_seed(seed, "heldout-mild", row["id"]))
        lq_mild = mild_degrade(hq01, degrade.scale, p.heldout_mild, generator)[0]
        lq_bic = bicubic_lq(hq01, degrade.scale)
        key = str(row["id"])
        real.append({"key": key, "hq": hq01 * 2 - 1, "lq": lq_real * 2 - 1})
        mild.append({"key": key, "hq": hq01 * 2 - 1, "lq": lq_mild * 2 - 1})
        bicubic.append({"key": key, "hq": hq01 * 2 - 1, "lq": lq_bic * 2 - 1})
    if not real:
        raise ValueError(f"{manifest}: no val-split images of at least {unit}x{unit} pixels to hold out")
    return {"heldout-realesrgan": real, "heldout-mild": mild, "heldout-bicubic": bicubic}


# ---------------------------------------------------------------------------------------------------- scoring


def score(methods: list[Method], datasets: dict[str, list[Sample]], metrics: Metrics, scale: int,
          p: EvaluateParams, available: list[str]) -> tuple[dict, list[dict], dict, list[str]]:
    """(means {method: {dataset: {metric: value}}}, per-image rows, grid outputs {dataset: {method: [(1,3,H,W)]}},
    notes). `available`: the metric names whose weights exist."""
    lpips_name = "lpips" if p.lpips_net == "alex" else "lpips-vgg"
    notes = []
    if lpips_name not in available:
        notes.append(f"lpips skipped: no {p.lpips_net} weights (run python -m sr.pretrained)")
    if "niqe" not in available:
        notes.append("niqe skipped: no NIQE parameters (run python -m sr.pretrained)")
    means: dict[str, dict[str, dict[str, float]]] = {m.name: {} for m in methods}
    rows, grids = [], {}
    for dataset, samples in datasets.items():
        hq_size = min(samples[0]["hq"].shape[-2:])
        with_niqe = "niqe" in available and hq_size >= p.niqe_min_size
        if "niqe" in available and not with_niqe:
            notes.append(f"niqe skipped on {dataset}: {hq_size} px crops < niqe_min_size {p.niqe_min_size}")
        which = scoring.MetricSet(crop_border=scale, lpips=p.lpips_net if lpips_name in available else None,
                                  ssim=True, niqe=with_niqe, extras=True, chroma=True, block_period=p.block_period)
        grids[dataset] = {m.name: [] for m in methods}

        def keep(method: str, index: int, out: torch.Tensor, dataset: str = dataset) -> None:
            if index < p.grid_samples:
                grids[dataset][method].append(out)

        values = scoring.score({m.name: m.run for m in methods}, samples, metrics, which, batch_size=1,
                               desc=f"eval {dataset}", on_output=keep)
        for index, sample in enumerate(samples):
            rows += [{"dataset": dataset, "image": index, "key": sample["key"], "method": m.name,
                      "psnr_y": round(values[m.name][index]["psnr_y"], 4)} for m in methods]
        for m in methods:
            means[m.name][dataset] = scoring.means(values[m.name], 6)
    return means, rows, grids, notes


def measure_cost(methods: list[Method], sample: Sample, teacher: str, warmup: int, repeats: int,
                 suffix: str = "") -> dict[str, dict]:
    """Median latency of each method on the same sample, timed round-robin here and now; speedup vs `teacher`.
    Keys: latency_s<suffix>, speedup_vs_teacher<suffix>."""
    lq, keys = sample["lq"][None], [sample["key"]]  # its key: the same ε draw as when it was scored
    timings = interleaved_latencies({m.name: (lambda m=m: m.run(lq, keys)) for m in methods}, warmup, repeats)
    cost = {m.name: {f"latency_s{suffix}": round(timings[m.name]["median_s"], 6)} for m in methods}
    reference = cost[teacher][f"latency_s{suffix}"]
    for entry in cost.values():
        entry[f"speedup_vs_teacher{suffix}"] = round(reference / max(entry[f"latency_s{suffix}"], 1e-9), 3)
    return cost


def paper_input(raw_dir: Path, side: int, scale: int) -> Sample:
    """A paper-sized LQ (side × side, OSEDiff's 128 → 512): the bicubic ×1/scale of the first held-out photo's
    center crop (or of the photo resized up to it, if smaller)."""
    manifest = raw_dir / "manifest.jsonl"
    row = next(json.loads(line) for line in manifest.read_text().splitlines() if '"val"' in line)
    img = load_rgb8(raw_dir / "images" / f"{row['id']}.png", f"{raw_dir}/images/{row['id']}.png")
    hq_side = side * scale
    if min(img.size) < hq_side:
        img = img.resize((max(hq_side, img.width), max(hq_side, img.height)), Image.BICUBIC)
    left, top = (img.width - hq_side) // 2, (img.height - hq_side) // 2
    array = np.asarray(img.crop((left, top, left + hq_side, top + hq_side)), dtype=np.float32) / 255.0
    hq01 = torch.from_numpy(array).permute(2, 0, 1).contiguous()
    return {"key": str(row["id"]), "hq": hq01 * 2 - 1, "lq": bicubic_lq(hq01, scale) * 2 - 1}


def latency_input(
    focus: str, val_shards: list[Path], raw_dir: Path | None, p: EvaluateParams, degrade: DegradeParams, seed: int
) -> Sample:
    """The sample every method is timed on: the first of evaluate's focus dataset (eval.json's
    `_info.focus_dataset`), rebuilt by the same builders, so latency is measured on an input the report scored."""
    if focus == "val":
        return val_dataset(val_shards, 1)[0]
    if raw_dir is None:
        raise ValueError(f"latency: the focus dataset {focus} is built from the held-out photos; no raw folder given")
    return heldout_datasets(raw_dir, p, degrade, seed)[focus][0]


def measure_latency(
    teacher_dir: Path,
    student_dirs: dict[str, Path],
    sample: Sample,
    paper: Sample,
    report: dict,
    p: EvaluateParams,
    seed: int,
    scale: int,
    latency_path: Path,
    plots_dir: Path,
) -> dict:
    """Time every method of `report` (eval.json) on `sample` and on the paper-sized `paper` (`_paper` keys, fewer
    repeats: it is slow for the multi-step teacher); write latency.json and the quality-vs-latency CSV."""
    methods = build_methods(teacher_dir, student_dirs, p.teacher_steps, seed)
    methods = with_color_fixes(methods, [], scale, reuse=False)  # as each ships
    teacher, focus = report["_info"]["teacher"], report["_info"]["focus_dataset"]
    latency: dict[str, Any] = measure_cost(methods, sample, teacher, p.latency_warmup, p.latency_repeats)
    large = measure_cost(methods, paper, teacher, 0, p.latency_paper_repeats, suffix="_paper")
    for name, entry in large.items():
        latency[name].update(entry)
    latency["_info"] = {
        "teacher": teacher,
        "threads": torch.get_num_threads(),
        "latency_input": {"dataset": focus, "key": sample["key"], "lq_shape": list(sample["lq"].shape)},
        "paper_input": {"key": paper["key"], "lq_shape": list(paper["lq"].shape)},
    }
    atomic_write_text(latency_path, json.dumps(latency, indent=2, sort_keys=True) + "\n")
    table = []
    for m in [m.name for m in methods]:
        q = report[m].get(focus, {})
        table.append([m, round(latency[m]["latency_s"] * 1000, 3), report[m]["cost"]["nfe"],
                      q.get("psnr_y", ""), q.get("ssim_y", ""), q.get("lpips", "")])
    _write_csv(plots_dir / "quality_latency.csv", ["method", "latency_ms", "nfe", "psnr_y", "ssim_y", "lpips"], table)
    return latency


# ---------------------------------------------------------------------------------------------------- outputs


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def write_outputs(report: dict, rows: list[dict], grids: dict, datasets: dict[str, list[Sample]], scale: int,
                  zoom: int, metrics_path: Path, plots_dir: Path) -> None:
    """eval.json, the per-image PSNR CSV for dvc plots (one column per method) and one comparison grid PNG per
    dataset."""
    atomic_write_text(metrics_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    methods = [m for m in report if not m.startswith("_")]
    focus = report["_info"]["focus_dataset"]
    per_image: dict[tuple[str, int], dict[str, float]] = {}
    for r in rows:
        if r["dataset"] == focus:
            per_image.setdefault((r["key"], r["image"]), {})[r["method"]] = r["psnr_y"]
    _write_csv(plots_dir / "per_image_psnr.csv", ["image", "key", *methods],
               [[i, k, *[v[m] for m in methods]] for (k, i), v in per_image.items()])
    teacher = report["_info"]["teacher"]
    for dataset, outs in grids.items():
        shown = ["bicubic", teacher, *[m for m in methods if m.startswith(("student-", "baseline-")) and "+" not in m]]
        n = len(outs["bicubic"])
        lq = torch.stack([s["lq"] for s in datasets[dataset][:n]])
        columns = {"LQ": F.interpolate(lq, scale_factor=scale, mode="nearest")}
        columns.update({m: torch.cat(outs[m]) for m in shown})
        columns["HQ"] = torch.stack([s["hq"] for s in datasets[dataset][:n]])
        comparison_grid(columns, plots_dir / f"grid-{dataset}.png", zoom)


def evaluate(teacher_dir: Path, student_dirs: dict[str, Path], val_shards: list[Path], raw_dir: Path | None,
             p: EvaluateParams, degrade: DegradeParams, seed: int, torch_home: Path, metrics_path: Path,
             plots_dir: Path, metrics: Any = None) -> dict:
    """Run everything and write the outputs; returns the eval.json content. `student_dirs`: method name -> folder
    (e.g. {"student-sinsr": models/student-sinsr}). `metrics` defaults to sr.eval.metrics.Metrics(torch_home)."""
    if metrics is None:
        metrics = Metrics(torch_home, extras=p.extra_metrics, extra_weights=p.extra_weights)
    methods = build_methods(teacher_dir, student_dirs, p.teacher_steps, seed)
    teacher = methods[1].name
    methods = with_color_fixes(methods, p.color_fix, degrade.scale)
    datasets = {"val": val_dataset(val_shards, p.max_val_samples)} if val_shards else {}
    if raw_dir is not None:
        datasets.update(heldout_datasets(raw_dir, p, degrade, seed))
    if not datasets:
        raise ValueError("evaluate: no dataset (neither val shards nor a raw folder given)")
    focus = "heldout-realesrgan" if "heldout-realesrgan" in datasets else next(iter(datasets))
    means, rows, grids, notes = score(methods, datasets, metrics, degrade.scale, p, available_metrics(torch_home))
    for name in p.extra_metrics:
        if name not in getattr(metrics, "extras_available", []):
            notes.append(f"{name} skipped: its weights are not in evaluate.extra_weights")
    report: dict[str, Any] = {m.name: {**means[m.name], "cost": {"nfe": m.nfe, "params": m.params}} for m in methods}
    report["_info"] = {
        "teacher": teacher, "focus_dataset": focus, "notes": notes,
        "datasets": {d: {"images": len(s), "hq_size": list(s[0]["hq"].shape[-2:])} for d, s in datasets.items()},
    }
    write_outputs(report, rows, grids, datasets, degrade.scale, p.zoom, metrics_path, plots_dir)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return report
