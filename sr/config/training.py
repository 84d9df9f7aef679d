"""Params of the ResShift teacher, its trajectory cache and the one-step distillation recipes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sr.config.base import Section


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
    # Each training pair is rotated by a random multiple of 90° as it is drawn (the shards already flip): with a
    # few photos the teacher otherwise learns their orientations. Off reproduces ResShift (hflip only).
    rot90: bool = True

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
