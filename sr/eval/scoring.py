"""The one validation routine: run every method on the same samples and score each output against its HQ.

Every trainer's val metrics (teacher, distill, OSEDiff: the reports below, which the stages write) and the evaluate
stage score through `score`. A method is `upscale(lq, keys) -> hq`, batches in [-1, 1]; the keys seed each sample's start
noise (sr.seeds.val_noise), so all ResShift-family methods start from the same x_T for the same sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from sr.data.shards import Sample
from sr.eval.metrics import LpipsNet, Metrics, blockiness, chroma_shift
from sr.models.resshift import ResShiftModel, bicubic_up
from sr.seeds import val_noise

Upscaler = Callable[[torch.Tensor, list[str]], torch.Tensor]
OnOutput = Callable[[str, int, torch.Tensor], None]  # (method, index of the batch's first sample, output batch)


@dataclass(frozen=True)
class MetricSet:
    """Which metrics to compute. PSNR(Y) always; `crop_border` pixels (the scale, BasicSR's convention) are dropped
    for PSNR and SSIM."""

    crop_border: int
    lpips: LpipsNet | None = "alex"
    ssim: bool = False
    niqe: bool = False
    extras: bool = False
    chroma: bool = False  # chroma shift against HQ (sr.eval.metrics.chroma_shift)
    block_period: int | None = None  # blockiness at this period (sr.eval.metrics.blockiness)


def bicubic(scale: int) -> Upscaler:
    return lambda lq, keys: bicubic_up(lq, scale).clamp(-1, 1)


def resshift(model: ResShiftModel, seed: int, steps: int | None = None) -> Upscaler:
    """A ResShift-family model at `steps` deterministic steps (default: its folder's), from each sample's val ε."""
    def run(lq: torch.Tensor, keys: list[str]) -> torch.Tensor:
        shape = (model.config.latent_channels, *(s * model.scale // model.autoencoder.factor for s in lq.shape[-2:]))
        return model.upscale(lq, val_noise(keys, seed, shape).to(lq.device), steps)

    return run


@torch.no_grad()
def score(methods: dict[str, Upscaler], samples: list[Sample], metrics: Metrics, which: MetricSet, batch_size: int,
          desc: str = "score", on_output: OnOutput | None = None) -> dict[str, list[dict[str, float]]]:
    """{method: [{metric: value} per sample, in sample order]}."""
    values: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
    for begin in tqdm(range(0, len(samples), batch_size), desc=desc, mininterval=2):
        chunk = samples[begin : begin + batch_size]
        lq, hq01 = torch.stack([s["lq"] for s in chunk]), (torch.stack([s["hq"] for s in chunk]) + 1) / 2
        keys = [s["key"] for s in chunk]
        for name, upscale in methods.items():
            out = upscale(lq, keys)
            out01 = (out.float() + 1) / 2
            found = {"psnr_y": metrics.psnr_y(out01, hq01, crop_border=which.crop_border)}
            if which.ssim:
                found["ssim_y"] = metrics.ssim_y(out01, hq01, crop_border=which.crop_border)
            if which.lpips is not None:
                found["lpips"] = metrics.lpips(out01, hq01, net=which.lpips)
            if which.niqe:
                found["niqe"] = metrics.niqe(out01)
            if which.chroma:
                found["chroma"] = chroma_shift(out01, hq01, crop_border=which.crop_border)
            if which.block_period is not None:
                found["blockiness"] = blockiness(out01, hq01, which.block_period)
            if which.extras:
                found.update(metrics.extra(out01, hq01))
            values[name] += [{k: float(v[i]) for k, v in found.items()} for i in range(len(chunk))]
            if on_output is not None:
                on_output(name, begin, out)
    return values


def means(values: list[dict[str, float]], digits: int) -> dict[str, float]:
    """The mean of every metric over the samples, rounded."""
    return {k: round(sum(v[k] for v in values) / len(values), digits) for k in values[0]}


# ---------------------------------------------------------------------------------------------------- trainers' val


def teacher_report(model: ResShiftModel, samples: list[Sample], seed: int, metrics: Metrics) -> dict:
    """metrics/teacher.json: the teacher at its T steps vs bicubic, PSNR(Y) on the val shards."""
    values = score({"teacher": resshift(model, seed), "bicubic": bicubic(model.scale)}, samples, metrics,
                   MetricSet(crop_border=model.scale, lpips=None), batch_size=1, desc="teacher val")
    report = {f"psnr_y_{name}": means(v, 4)["psnr_y"] for name, v in values.items()}
    report["psnr_y_gain_db"] = round(report["psnr_y_teacher"] - report["psnr_y_bicubic"], 4)
    return {**report, "val_samples": len(samples), "steps": model.diffusion.steps}


def student_report(student: ResShiftModel, teacher: ResShiftModel, samples: list[Sample], seed: int,
                   metrics: Metrics, batch_size: int, lpips: bool) -> dict:
    """metrics/train-<recipe>.json: the one-step student, the T-step teacher and bicubic on the val shards, from the
    same ε per sample; LPIPS (alex) when `lpips`."""
    methods = {"student": resshift(student, seed), "teacher": resshift(teacher, seed), "bicubic": bicubic(student.scale)}
    values = score(methods, samples, metrics, MetricSet(crop_border=student.scale, lpips="alex" if lpips else None),
                   batch_size, desc="distill val")
    report = {f"{metric}_{name}": value for name, v in values.items() for metric, value in means(v, 4).items()}
    report["psnr_y_gap_to_teacher_db"] = round(report["psnr_y_teacher"] - report["psnr_y_student"], 4)
    report["psnr_y_gain_over_bicubic_db"] = round(report["psnr_y_student"] - report["psnr_y_bicubic"], 4)
    return {**report, "val_samples": len(samples), "steps_teacher": teacher.diffusion.steps, "steps_student": 1}


def one_step_report(model: torch.nn.Module, scale: int, samples: list[Sample], metrics: Metrics, lpips: bool,
                    batch_size: int = 16) -> dict:
    """A one-step model (`model(lq) -> hq`) and bicubic on the val shards: PSNR(Y), and LPIPS (alex) when `lpips`."""
    methods = {"model": lambda lq, keys: model(lq), "bicubic": bicubic(scale)}
    values = score(methods, samples, metrics, MetricSet(crop_border=scale, lpips="alex" if lpips else None), batch_size,
                   desc="val")
    report = {f"{metric}_{name}": value for name, v in values.items() for metric, value in means(v, 4).items()}
    return {**report, "val_samples": len(samples)}


def osediff_validator(samples: list[Sample], scale: int, metrics: Metrics, batch_size: int = 16
                      ) -> tuple[Callable[[str, torch.nn.Module], None], dict[str, dict]]:
    """A validate callback for the OSEDiff trainer and the results it fills: {"bicubic"|"init"|"osediff": means}."""
    results: dict[str, dict] = {}
    which = MetricSet(crop_border=scale)

    def validate(name: str, student: torch.nn.Module) -> None:
        device = next(student.parameters()).device
        student.eval()
        methods = {} if results else {"bicubic": bicubic(scale)}
        methods[name] = lambda lq, keys: student(lq.to(device)).cpu()
        for method, v in score(methods, samples, metrics, which, batch_size, desc=f"osediff val {name}").items():
            results[method] = means(v, 4)

    return validate, results


def osediff_report(results: dict[str, dict], steps: int, samples: int) -> dict:
    """metrics/train-osediff.json: PSNR(Y) and LPIPS of bicubic, the initial and the trained student on val."""
    report = {f"{metric}_{name}": value for name, m in results.items() for metric, value in m.items()}
    return {**report, "steps": steps, "val_samples": samples}
