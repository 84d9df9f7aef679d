"""Params of the data stages: `download` (photo sources) and `degrade` (Real-ESRGAN degradation)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

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
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    min_val_images: Annotated[int, Field(ge=1)] = 1
    retries: Annotated[int, Field(ge=0)] = 3


KernelKind = Literal["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
ALL_KERNELS: list[KernelKind] = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]


class BlurParams(Section):
    """One blur of the Real-ESRGAN kernel family (first or second stage)."""

    kernel_size: Annotated[int, Field(ge=3, le=31)] = 21
    kernel_list: list[KernelKind] = ALL_KERNELS
    kernel_prob: list[Probability] = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    sinc_prob: Probability = 0.1
    sigma: Range = (0.2, 3.0)
    betag_range: Range = (0.5, 4.0)
    betap_range: Range = (1.0, 2.0)

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {v}")
        return v

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

    resize_prob: tuple[Probability, Probability, Probability] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: Range = (0.15, 1.5)
    gaussian_noise_prob: Probability = 0.5
    noise_range: Range = (1.0, 30.0)
    poisson_scale_range: Range = (0.05, 3.0)
    gray_noise_prob: Probability = 0.4
    jpeg_range: Range = (30.0, 95.0)

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


class DegradeParams(Section):
    """Real-ESRGAN second-order degradation; defaults are ResShift/SinSR/TAD-SR's `degradation:` block."""

    scale: Literal[2, 4] = 4
    hq_size: Annotated[int, Field(ge=16)] = 64
    train_crops_per_image: Annotated[int, Field(ge=1)] = 64
    val_crops_per_image: Annotated[int, Field(ge=1)] = 8
    shard_size: Annotated[int, Field(ge=1)] = 512
    use_hflip: bool = True
    blur1: BlurParams = BlurParams()
    stage1: DegradationStage = DegradationStage()
    second_order_prob: Probability = 0.5
    second_blur_prob: Probability = 0.8
    blur2: BlurParams = BlurParams(kernel_size=15, sigma=(0.2, 1.5))
    stage2: DegradationStage = DegradationStage(
        resize_prob=(0.3, 0.4, 0.3), resize_range=(0.3, 1.2), noise_range=(1.0, 25.0), poisson_scale_range=(0.05, 2.5)
    )
    final_sinc_prob: Probability = 0.8
    usm_sharpen: bool = False  # Real-ESRGAN's USM on the HQ (the target too); ResShift's `use_sharp: False`

    @field_validator("hq_size")
    @classmethod
    def _divisible(cls, v: int) -> int:
        if v % 8:
            raise ValueError(f"hq_size must be a multiple of 8, got {v}")
        return v
