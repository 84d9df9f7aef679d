"""Params of the `evaluate`, `latency` and `package` stages."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sr.config.base import ColorFix, Section
from sr.config.data import MildParams
from sr.config.training import DistillRecipe

EvalDataset = Literal["val", "heldout-realesrgan", "heldout-mild", "heldout-bicubic"]


class EvaluateParams(Section):
    """Compare bicubic, the teacher at T and fewer steps, every one-step student and the GAN baseline on the val
    shards and on center crops of the held-out photos (one fixed, seeded draw each of the Real-ESRGAN and the mild
    degradation, and bicubic-only)."""

    heldout_crop: Annotated[int, Field(ge=16)]  # HQ center-crop size of each held-out photo
    heldout_mild: MildParams  # the heldout-mild set's degradation
    block_period: Annotated[int, Field(ge=2)]  # blockiness is measured at this period (the latent grid's)
    color_fix: list[ColorFix]  # each student is also scored with each of these colour corrections it does not ship
    teacher_steps: list[Annotated[int, Field(ge=1)]]  # the teacher respaced, without distillation
    max_val_samples: Annotated[int, Field(ge=1)] | None  # None: every val-shard sample
    lpips_net: Literal["alex", "vgg"]
    niqe_min_size: Annotated[int, Field(ge=8)]  # NIQE is skipped on datasets with smaller images
    extra_metrics: list[Literal["dists", "musiq", "clipiqa", "maniqa"]]
    extra_weights: str | None  # folder or s3:// prefix with the extras' weight files
    # read by the `latency` stage only: timings are machine-dependent, so they stay out of eval.json
    latency_warmup: Annotated[int, Field(ge=0)]
    latency_repeats: Annotated[int, Field(ge=1)]
    latency_paper_side: Annotated[int, Field(ge=8)]  # LQ side of the paper-sized timing (128 -> 512, as OSEDiff)
    latency_paper_repeats: Annotated[int, Field(ge=1)]
    grid_samples: Annotated[int, Field(ge=1)]
    zoom: Annotated[int, Field(ge=1)]  # magnification of the zoomed crop under each grid cell


class PackageParams(Section):
    """Pick one student by a rule on `metrics/eval.json`, package it, optionally publish it."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")]
    dataset: EvalDataset  # the eval dataset the rule reads
    metric: Literal["lpips", "psnr_y", "ssim_y", "niqe"]  # best one wins among the qualified
    max_psnr_drop_db: Annotated[float, Field(ge=0)]  # qualified: PSNR(Y) >= teacher - this
    onnx: bool  # also ship model.onnx (sr-export) when the chosen student is of the ResShift family
    license: str | None  # of the weights, for the model card (an SPDX identifier); yours to choose
    author: str
    publish: Annotated[str, Field(pattern=r"^s3://[^/]+")] | None
    # The students the rule may pick (None: every evaluated one), e.g. the recipes only, to ship a ResShift-family
    # model with its ONNX graph. params.yaml leaves it out: by default every student competes.
    students: list[DistillRecipe | Literal["osediff"]] | None = None
