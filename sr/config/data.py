"""Params of the data stages: `download` (photo sources) and `degrade` (Real-ESRGAN degradation)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from sr.config.base import Probability, Range, Section, check_range


class BundledSource(Section):
    """Real photos shipped inside installed packages (scikit-image, scikit-learn, matplotlib): no network."""

    kind: Literal["bundled"]
    names: list[str] | None = None  # None: every bundled photo


class DirSource(Section):
    kind: Literal["dir"]
    path: str


class UrlSource(Section):
    kind: Literal["url"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class S3Source(Section):
    kind: Literal["s3"]
    uri: Annotated[str, Field(pattern=r"^s3://[^/]+")]


Source = Annotated[BundledSource | DirSource | UrlSource | S3Source, Field(discriminator="kind")]


class DownloadParams(Section):
    sources: Annotated[list[Source], Field(min_length=1)]
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    min_val_images: Annotated[int, Field(ge=1)]
    min_size: Annotated[int, Field(ge=8)]  # photos with a shorter side are rejected (rejected.jsonl says why)
    retries: Annotated[int, Field(ge=0)]


def _odd(v: int) -> int:
    if v % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {v}")
    return v


KernelSize = Annotated[int, Field(ge=3, le=31), AfterValidator(_odd)]
KernelKind = Literal["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]


class BlurParams(Section):
    """One blur of the Real-ESRGAN kernel family (first or second stage)."""

    kernel_size: KernelSize
    kernel_list: list[KernelKind]
    kernel_prob: list[Probability]
    sinc_prob: Probability
    sigma: Range
    betag_range: Range
    betap_range: Range

    @field_validator("sigma", "betag_range", "betap_range")
    @classmethod
    def _range(cls, v: Range) -> Range:
        return check_range(v)

    @model_validator(mode="after")
    def _probs(self) -> BlurParams:
        if len(self.kernel_prob) != len(self.kernel_list):
            raise ValueError(f"kernel_prob has {len(self.kernel_prob)} entries, kernel_list {len(self.kernel_list)}")
        if abs(sum(self.kernel_prob) - 1.0) > 1e-6:
            raise ValueError(f"kernel_prob must sum to 1, got {sum(self.kernel_prob)}")
        return self


class DegradationStage(Section):
    """Resize, noise and JPEG of one Real-ESRGAN stage."""

    resize_prob: tuple[Probability, Probability, Probability]  # up, down, keep
    resize_range: Range
    gaussian_noise_prob: Probability
    noise_range: Range
    poisson_scale_range: Range
    gray_noise_prob: Probability
    jpeg_range: Range

    @field_validator("resize_range", "noise_range", "poisson_scale_range", "jpeg_range")
    @classmethod
    def _range(cls, v: Range) -> Range:
        return check_range(v)

    @field_validator("resize_prob")
    @classmethod
    def _sum(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"resize_prob must sum to 1, got {sum(v)}")
        return v


class MildParams(Section):
    """A mild one-stage degradation: isotropic Gaussian blur, antialiased bicubic downscale, Gaussian colour noise,
    JPEG (each drawn uniformly from its range)."""

    blur_sigma: Range
    kernel_size: KernelSize
    noise_range: Range  # sigma in 8-bit units
    jpeg_range: Range

    @field_validator("blur_sigma", "noise_range", "jpeg_range")
    @classmethod
    def _range(cls, v: Range) -> Range:
        return check_range(v)


class DegradeParams(Section):
    """Real-ESRGAN second-order degradation (params.yaml carries ResShift/SinSR/TAD-SR's `degradation:` block).

    Train crops only: with `clean_prob` the LQ is the bicubic-only one, with `mild_prob` it is `mild`'s, else the
    full Real-ESRGAN degradation; val crops are always Real-ESRGAN."""

    scale: Literal[2, 4]
    hq_size: Annotated[int, Field(ge=16)]
    train_crops_per_image: Annotated[int, Field(ge=1)]
    val_crops_per_image: Annotated[int, Field(ge=1)]
    shard_size: Annotated[int, Field(ge=1)]
    use_hflip: bool
    blur1: BlurParams
    stage1: DegradationStage
    second_order_prob: Probability
    second_blur_prob: Probability
    blur2: BlurParams
    stage2: DegradationStage
    final_sinc_prob: Probability
    usm_sharpen: bool  # Real-ESRGAN's USM on the HQ (the target too); ResShift's `use_sharp: False`
    clean_prob: Probability
    mild_prob: Probability
    mild: MildParams

    @field_validator("hq_size")
    @classmethod
    def _divisible(cls, v: int) -> int:
        if v % 8:
            raise ValueError(f"hq_size must be a multiple of 8, got {v}")
        return v

    @model_validator(mode="after")
    def _mixture(self) -> DegradeParams:
        if self.clean_prob + self.mild_prob > 1.0:
            raise ValueError(f"clean_prob + mild_prob must be at most 1, got {self.clean_prob + self.mild_prob}")
        return self
