"""Typed params: one pydantic model per params.yaml section, and the project's only YAML reader.

Every model forbids unknown keys, so a typo fails at load with one line that names the key. Discrete choices are
`Literal`s. Paths to files are not params (they are stage arguments in dvc.yaml); data *sources* and checkpoint
URIs are, because they are what an experiment is about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ParamsError(ValueError):
    """A params file that does not validate; the message is one line naming file, key, value and what is allowed."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Range = tuple[float, float]


def _check_range(value: Range) -> Range:
    if value[0] > value[1]:
        raise ValueError(f"range low {value[0]} > high {value[1]}")
    return value


# ---------------------------------------------------------------------------------------------------- download


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


# ---------------------------------------------------------------------------------------------------- degrade

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
        return _check_range(v)

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
        return _check_range(v)

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


# ---------------------------------------------------------------------------------------------------- teacher


class DiffusionParams(Section):
    """ResShift's exponential η schedule (METHODS.md §1.2); defaults are v1 (T=15)."""

    steps: Annotated[int, Field(ge=2)] = 15
    kappa: Annotated[float, Field(gt=0)] = 2.0
    power: Annotated[float, Field(gt=0)] = 0.3
    min_noise_level: Annotated[float, Field(gt=0)] = 0.04
    etas_end: Annotated[float, Field(gt=0, lt=1)] = 0.99


class AutoencoderParams(Section):
    kind: Literal["pixel_unshuffle", "vq_f4", "kl"] = "pixel_unshuffle"
    checkpoint: str | None = None  # vq_f4: official .pth; kl: diffusers folder; path or s3:// URI


class UNetParams(Section):
    """The small teacher/student UNet of the embedded default (1.1 M params; fwd+bwd of a batch of 32 48x16x16
    latents ~0.14 s on 2 CPU cores; model_channels=64 is 4.4 M params and ~0.36 s)."""

    model_channels: Annotated[int, Field(ge=8)] = 32
    channel_mult: list[Annotated[int, Field(ge=1)]] = [1, 2]
    num_res_blocks: Annotated[int, Field(ge=1)] = 2
    attention_levels: list[int] = [1]  # indices into channel_mult that get a self-attention block
    num_head_channels: Annotated[int, Field(ge=8)] = 32
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


class SwinUNetParams(Section):
    """ResShift's UNetModelSwin (METHODS.md §1.4); defaults are the official realsr ×4 config (118.59 M params)."""

    image_size: int = 64
    model_channels: int = 160
    channel_mult: list[int] = [1, 2, 2, 4]
    num_res_blocks: list[int] = [2, 2, 2, 2]
    attention_resolutions: list[int] = [64, 32, 16, 8]
    num_head_channels: int = 32
    swin_depth: int = 2
    swin_embed_dim: int = 192
    window_size: Annotated[int, Field(ge=1)] = 8
    mlp_ratio: Annotated[float, Field(gt=0)] = 4.0
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> SwinUNetParams:
        # GroupNorm(32) runs on every UNet width and on the Swin embedding, so all must be multiples of 32
        if len(self.num_res_blocks) != len(self.channel_mult):
            raise ValueError(f"num_res_blocks {self.num_res_blocks} needs one entry per level of {self.channel_mult}")
        widths = [self.model_channels * m for m in self.channel_mult] + [self.swin_embed_dim]
        if any(w % 32 for w in widths) or min(widths) <= 0:
            raise ValueError(f"model_channels * channel_mult and swin_embed_dim must be multiples of 32, got {widths}")
        if self.num_head_channels <= 0 or self.swin_embed_dim % self.num_head_channels:
            raise ValueError(f"swin_embed_dim {self.swin_embed_dim} is not a multiple of {self.num_head_channels=}")
        # each level halves the grid; Swin windows shrink to the grid when it is smaller, else must tile it
        sizes = [self.image_size / 2**level for level in range(len(self.channel_mult))]
        if any(s != int(s) or s < 1 or s % min(self.window_size, s) for s in sizes):
            raise ValueError(f"image_size {self.image_size}: level grids {sizes} must be whole and tiled by the window")
        return self


MixedPrecision = Literal["no", "fp16", "bf16"]


class TrainParams(Section):
    """An explicit training loop's knobs, shared by every trainer."""

    steps: Annotated[int, Field(ge=1)] = 1000
    batch_size: Annotated[int, Field(ge=1)] = 32
    grad_accum: Annotated[int, Field(ge=1)] = 1
    lr: Annotated[float, Field(gt=0)] = 5e-5
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    grad_clip: Annotated[float, Field(ge=0)] = 0.0  # 0: off
    ema_rate: Annotated[float, Field(ge=0, lt=1)] = 0.999
    mixed_precision: MixedPrecision = "no"
    ckpt_every: Annotated[int, Field(ge=1)] = 200
    log_every: Annotated[int, Field(ge=1)] = 20
    num_workers: Annotated[int, Field(ge=0)] = 1
    shuffle_buffer: Annotated[int, Field(ge=1)] = 1000


class TeacherParams(Section):
    checkpoint: str | None = None  # official ResShift .pth (path or s3://): import instead of training
    arch: Literal["unet", "resshift_swin"] = "unet"
    unet: UNetParams = UNetParams()
    swin: SwinUNetParams = SwinUNetParams()
    autoencoder: AutoencoderParams = AutoencoderParams()
    diffusion: DiffusionParams = DiffusionParams()
    train: TrainParams = TrainParams()

    @model_validator(mode="after")
    def _import_needs_swin(self) -> TeacherParams:
        if self.checkpoint is not None and self.arch != "resshift_swin":
            raise ValueError(f"checkpoint import needs arch 'resshift_swin', got '{self.arch}'")
        return self


class TrajectoriesParams(Section):
    keep_intermediate: bool = False
    batch_size: Annotated[int, Field(ge=1)] = 64
    shard_size: Annotated[int, Field(ge=1)] = 512
    mixed_precision: MixedPrecision = "no"


# ---------------------------------------------------------------------------------------------------- osediff

OSEDIFF_NEG_PROMPT = (
    "painting, oil painting, illustration, drawing, art, sketch, cartoon, CG Style, 3D render, unreal engine, "
    "blurring, dirty, messy, worst quality, low quality, frames, watermark, signature, jpeg artifacts, deformed, "
    "lowres, over-smooth"
)


class PromptParams(Section):
    """Text conditioning (METHODS.md §4.4): none = the empty prompt, fixed = `text`, tagger = RAM tags of the HQ
    image followed by `text`. The negative prompt only feeds the real score's classifier-free guidance."""

    kind: Literal["none", "fixed", "tagger"] = "none"
    text: str = ""
    negative: str = OSEDIFF_NEG_PROMPT
    tagger_path: str | None = None  # RAM Swin-L checkpoint (path or s3://), kind "tagger" only

    @model_validator(mode="after")
    def _tagger_needs_path(self) -> PromptParams:
        if self.kind == "tagger" and self.tagger_path is None:
            raise ValueError("prompt kind 'tagger' needs tagger_path")
        return self


class LoraParams(Section):
    """PEFT LoRA on the VAE encoder and the UNet; defaults are OSEDiff's (METHODS.md §4.1). A module is adapted
    when its weight's name contains one of the patterns (bias and norm weights never)."""

    rank: Annotated[int, Field(ge=1)] = 4
    alpha: Annotated[float, Field(gt=0)] = 8.0  # scaling alpha/rank = 2
    vae_targets: list[str] = ["conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out",
                              "to_k", "to_q", "to_v", "to_out.0"]  # fmt: skip
    unet_targets: list[str] = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in",
                               "conv_shortcut", "conv_out", "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"]  # fmt: skip


class SmallSDParams(Section):
    """The SD-shaped stand-in of the embedded default: same component classes as SD-2.1, CPU-sized."""

    vae_channels: list[Annotated[int, Field(ge=8)]] = [32, 32, 64, 64]  # 4 levels: x8 downscale like SD
    vae_layers_per_block: Annotated[int, Field(ge=1)] = 1
    unet_channels: list[Annotated[int, Field(ge=8)]] = [32, 64]
    unet_layers_per_block: Annotated[int, Field(ge=1)] = 1
    attention_head_dim: Annotated[int, Field(ge=4)] = 8
    cross_attention_dim: Annotated[int, Field(ge=8)] = 32  # = text_hidden_size
    norm_num_groups: Annotated[int, Field(ge=1)] = 8
    text_layers: Annotated[int, Field(ge=1)] = 2
    text_heads: Annotated[int, Field(ge=1)] = 2
    text_intermediate_size: Annotated[int, Field(ge=8)] = 64

    @model_validator(mode="after")
    def _divisible(self) -> SmallSDParams:
        for c in self.vae_channels + self.unet_channels:
            if c % self.norm_num_groups:
                raise ValueError(f"channels {c} not divisible by norm_num_groups {self.norm_num_groups}")
        for c in self.unet_channels:
            if c % self.attention_head_dim:
                raise ValueError(f"unet channels {c} not divisible by attention_head_dim {self.attention_head_dim}")
        if self.cross_attention_dim % self.text_heads:
            raise ValueError(f"cross_attention_dim {self.cross_attention_dim} not divisible by text_heads")
        return self


class OsediffParams(Section):
    """OSEDiff (METHODS.md §4): LoRA'd SD VAE encoder + UNet, one step at t=999, L2 + LPIPS + VSD."""

    checkpoint: str | None = None  # diffusers-format SD folder or s3:// prefix; None: build `small`
    small: SmallSDParams = SmallSDParams()
    # brief pre-training of `small` (checkpoint None): the VAE as an autoencoder, then the UNet's eps-prediction
    base_vae_steps: Annotated[int, Field(ge=0)] = 200
    base_steps: Annotated[int, Field(ge=0)] = 200
    base_lr: Annotated[float, Field(gt=0)] = 1e-3
    lora: LoraParams = LoraParams()
    prompt: PromptParams = PromptParams()
    vae_sample: Literal["sample", "mode"] = "sample"  # the reference samples the posterior even at test time
    lambda_l2: Annotated[float, Field(ge=0)] = 1.0
    lambda_lpips: Annotated[float, Field(ge=0)] = 2.0
    lambda_vsd: Annotated[float, Field(ge=0)] = 1.0
    cfg_scale: Annotated[float, Field(ge=1)] = 7.5
    t_min: Annotated[int, Field(ge=0)] = 20
    t_max: Annotated[int, Field(le=1000)] = 980  # VSD timesteps t ~ U[t_min, t_max)
    gradient_checkpointing: bool = False
    mixed_precision: MixedPrecision = "no"  # weight dtype of the frozen real-score UNet and text encoder
    vae_tiling: bool = False
    train: TrainParams = TrainParams(
        steps=300, batch_size=4, lr=5e-5, weight_decay=1e-2, grad_clip=1.0, ema_rate=0.0, ckpt_every=100
    )

    @model_validator(mode="after")
    def _t_range(self) -> OsediffParams:
        if not self.t_min < self.t_max:
            raise ValueError(f"need t_min < t_max, got t_min={self.t_min}, t_max={self.t_max}")
        return self


# ---------------------------------------------------------------------------------------------------- distill

DistillRecipe = Literal["sinsr", "tadsr", "colearn"]
Weight = Annotated[float, Field(ge=0)]


class SinsrParams(Section):
    """SinSR (METHODS.md §2.2): L = distill + inverse + gt, weights 1:1:1 in the reference config."""

    lambda_distill: Weight = 1.0
    lambda_inverse: Weight = 1.0
    lambda_gt: Weight = 1.0


class TadsrParams(Section):
    """TAD-SR (METHODS.md §3): L_G = MSE + λ_HSD·HSD + λ_adv·hinge-GAN on the frozen teacher encoder's features."""

    lambda_mse: Weight = 1.0
    lambda_hsd: Weight = 1.0
    lambda_adv: Weight = 0.02
    hsd_steps: Annotated[int, Field(ge=1)] = 3  # HSD re-noising step s ~ U{0..hsd_steps-1}
    c_dim: Annotated[int, Field(ge=1)] = 64  # logits per position of each discriminator head
    disc_lr: Annotated[float, Field(gt=0)] = 5e-5


class ColearnParams(Section):
    """Co-learning (METHODS.md §5): distill + GT regression + HQ and LQ adversarial terms, a learnable downsampler."""

    lambda_distill: Weight = 1.0
    lambda_gt: Weight = 1.0  # the student's L_denoise: x0 MSE against the HQ latent
    lambda_hq_adv: Weight = 0.02
    lambda_lq_adv: Weight = 0.02
    lambda_down: Weight = 1.0  # the downsampler's L_denoise: G(HQ latent, noise) against y
    g_loss: Literal["non_saturating", "paper"] = "non_saturating"  # paper: E[1 - D(fake)] on probabilities
    downsampler: Literal["diffusion", "conv"] = "diffusion"
    disc_channels: Annotated[int, Field(ge=4)] = 64
    disc_levels: Annotated[int, Field(ge=1)] = 3
    c_dim: Annotated[int, Field(ge=1)] = 64
    disc_lr: Annotated[float, Field(gt=0)] = 5e-5
    downsampler_lr: Annotated[float, Field(gt=0)] = 5e-5


class DistillParams(Section):
    """One-step students distilled from the teacher; `recipes` lists the ones dvc trains (one stage each)."""

    recipes: Annotated[list[DistillRecipe], Field(min_length=1)] = ["sinsr", "tadsr", "colearn"]
    targets: Literal["cached", "online"] = "cached"  # online: run the teacher's T-step sampler inside the loop
    sinsr: SinsrParams = SinsrParams()
    tadsr: TadsrParams = TadsrParams()
    colearn: ColearnParams = ColearnParams()
    sample_every: Annotated[int, Field(ge=1)] = 500  # a sample-grid PNG every N steps
    val_batch_size: Annotated[int, Field(ge=1)] = 32
    train: TrainParams = TrainParams(steps=1000, batch_size=8, lr=5e-5, warmup_steps=0, ema_rate=0.999)

    @field_validator("recipes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"recipes must not repeat, got {v}")
        return v


# ---------------------------------------------------------------------------------------------------- evaluate


class EvaluateParams(Section):
    """Compare bicubic, the teacher at T and fewer steps, and every one-step student on the val shards and on
    center crops of the held-out photos (one fixed, seeded Real-ESRGAN degradation each, and bicubic-only)."""

    heldout_crop: Annotated[int, Field(ge=16)] = 256  # HQ center-crop size of each held-out photo
    teacher_steps: list[Annotated[int, Field(ge=1)]] = [4, 1]  # the teacher respaced, without distillation
    max_val_samples: Annotated[int, Field(ge=1)] | None = None  # None: every val-shard sample
    lpips_net: Literal["alex", "vgg"] = "alex"
    niqe_min_size: Annotated[int, Field(ge=8)] = 96  # NIQE is skipped on datasets with smaller images
    extra_metrics: list[Literal["dists", "musiq", "clipiqa", "maniqa"]] = []
    extra_weights: str | None = None  # folder or s3:// prefix with the extras' weight files
    latency_warmup: Annotated[int, Field(ge=0)] = 2
    latency_repeats: Annotated[int, Field(ge=1)] = 10
    grid_samples: Annotated[int, Field(ge=1)] = 3
    zoom: Annotated[int, Field(ge=1)] = 3  # magnification of the zoomed crop under each grid cell


class PackageParams(Section):
    """Pick one student by a rule on `metrics/eval.json`, package it, optionally publish it."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] = "sr-onestep"
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")] = "0.1.0"
    dataset: str = "heldout-realesrgan"  # the eval dataset the rule reads
    metric: Literal["lpips", "psnr_y", "ssim_y", "niqe"] = "lpips"  # best one wins among the qualified
    max_psnr_drop_db: Annotated[float, Field(ge=0)] = 0.5  # qualified: PSNR(Y) >= teacher - this
    publish: Annotated[str, Field(pattern=r"^s3://[^/]+")] | None = None


# ---------------------------------------------------------------------------------------------------- file


class Params(Section):
    seed: int = 0
    download: DownloadParams
    degrade: DegradeParams = DegradeParams()
    teacher: TeacherParams = TeacherParams()
    trajectories: TrajectoriesParams = TrajectoriesParams()
    osediff: OsediffParams = OsediffParams()
    distill: DistillParams = DistillParams()
    evaluate: EvaluateParams = EvaluateParams()
    package: PackageParams = PackageParams()


def _allowed(error: dict[str, Any], model: type[BaseModel]) -> str:
    """What the schema allows at the failing location, for the one-line message."""
    kind = error["type"]
    if kind == "extra_forbidden":
        parent: Any = model
        for part in error["loc"][:-1]:
            fields = getattr(parent, "model_fields", None)
            if fields is None or not isinstance(part, str) or part not in fields:
                parent = None
                break
            annotation = fields[part].annotation
            parent = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
            if parent is None:
                break
        if parent is not None:
            return f"unknown key; allowed: {', '.join(parent.model_fields)}"
        return "unknown key"
    return error["msg"]


def _location(loc: tuple[Any, ...]) -> str:
    """`('download', 'sources', 0, 'url', 'sha256')` -> `download.sources[0].sha256`."""
    text = ""
    after_index = False
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            after_index = True
            continue
        if after_index and part in {"bundled", "dir", "url", "s3"}:
            after_index = False  # the discriminated-union tag pydantic inserts; the user never wrote it
            continue
        text += f".{part}" if text else str(part)
        after_index = False
    return text


def parse_params(data: Any, source: str = "params.yaml") -> Params:
    """Validate a params mapping; raise ParamsError with one line: file, key, bad value, what is allowed."""
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = _location(error["loc"]) or "<root>"
        value = error.get("input")
        shown = "" if error["type"] == "missing" else f" = {value!r}"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ParamsError(f"{source}: {key}{shown}: {_allowed(error, Params)}{more}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read params file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_params(data, str(path))


class ParamsView:
    """Read access to just the keys a stage declares (its `params:` list in dvc.yaml), recording which it read.

    A stage that reads an undeclared key fails at once, so dvc.yaml can never under-declare; the recorded reads let
    a test check that it does not over-declare either.
    """

    def __init__(self, params: BaseModel, keys: list[str], prefix: str = "", read: set[str] | None = None):
        self._params, self._keys, self._prefix = params, keys, prefix
        self.read: set[str] = set() if read is None else read

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        full = self._prefix + name
        if full in self._keys:
            self.read.add(full)
            return getattr(self._params, name)
        if any(key.startswith(full + ".") for key in self._keys):
            return ParamsView(getattr(self._params, name), self._keys, full + ".", self.read)
        raise AttributeError(f"param '{full}' is not declared for this stage (declared: {', '.join(self._keys)})")


def open_params(path: str | Path, keys: list[str]) -> ParamsView:
    """Load and validate the whole file (a typo anywhere fails), then expose only `keys`."""
    return ParamsView(load_params(path), list(keys))
