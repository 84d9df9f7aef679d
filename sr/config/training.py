"""Params of the ResShift teacher, its trajectory cache and the one-step distillation recipes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sr.config.base import Section

MixedPrecision = Literal["no", "fp16", "bf16"]
AutoencoderKind = Literal["pixel_unshuffle", "vq_f4", "kl"]
# what a model folder may hold: a params-buildable first stage, or a student's own trained pixel-unshuffle decoder
ModelAutoencoderKind = AutoencoderKind | Literal["pixel_unshuffle_refine"]
DenoiserArch = Literal["unet", "resshift_swin"]


class DiffusionParams(Section):
    """ResShift's exponential η schedule (docs/methods.md §1.2); v1 is T=15, κ=2, p=0.3, 0.04, 0.99."""

    steps: Annotated[int, Field(ge=2)]
    kappa: Annotated[float, Field(gt=0)]
    power: Annotated[float, Field(gt=0)]
    min_noise_level: Annotated[float, Field(gt=0)]
    etas_end: Annotated[float, Field(gt=0, lt=1)]


class VQParams(Section):
    """The VQ-f4 first stage (docs/methods.md §1.1). params.yaml (pixel_unshuffle) carries none of these keys: the
    defaults are the official autoencoder_vq_f4.pth architecture, which the checkpoint must match."""

    embed_dim: Annotated[int, Field(ge=1)] = 3
    n_embed: Annotated[int, Field(ge=2)] = 8192
    ch: Annotated[int, Field(ge=32)] = 128  # GroupNorm(32) on every width
    ch_mult: list[Annotated[int, Field(ge=1)]] = [1, 2, 4]  # factor 2^(len-1)
    num_res_blocks: Annotated[int, Field(ge=1)] = 2


class AutoencoderParams(Section):
    kind: AutoencoderKind
    checkpoint: str | None  # vq_f4: official .pth; kl: diffusers folder; path or s3:// URI
    vq: VQParams = VQParams()


class UNetParams(Section):
    """The small teacher/student UNet of the embedded default (model_channels 32: 1.1 M params; fwd+bwd of a batch
    of 32 48x16x16 latents ~0.14 s on 2 CPU cores; model_channels 64: 4.4 M params and ~0.36 s)."""

    model_channels: Annotated[int, Field(ge=8)]
    channel_mult: list[Annotated[int, Field(ge=1)]]
    num_res_blocks: Annotated[int, Field(ge=1)]
    attention_levels: list[int]  # indices into channel_mult that get a self-attention block
    attention_window: Annotated[int, Field(ge=1)]  # attention within windows of this many positions per side
    num_head_channels: Annotated[int, Field(ge=8)]
    dropout: Annotated[float, Field(ge=0, lt=1)]


class SwinUNetParams(Section):
    """ResShift's UNetModelSwin (docs/methods.md §1.4). params.yaml (arch unet) carries none of these keys: the
    defaults are the official realsr ×4 architecture (118.59 M params), which official checkpoints must match."""

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




class TrainParams(Section):
    """An explicit training loop's knobs, shared by every trainer (sr/train/loop.py reads them)."""

    steps: Annotated[int, Field(ge=1)]
    batch_size: Annotated[int, Field(ge=1)]  # per optimizer step, over all processes together
    grad_accum: Annotated[int, Field(ge=1)]
    lr: Annotated[float, Field(gt=0)]
    warmup_steps: Annotated[int, Field(ge=0)]
    weight_decay: Annotated[float, Field(ge=0)]
    grad_clip: Annotated[float, Field(ge=0)]  # 0: off
    mixed_precision: MixedPrecision
    ckpt_every: Annotated[int, Field(ge=1)]
    log_every: Annotated[int, Field(ge=1)]
    num_workers: Annotated[int, Field(ge=0)]
    shuffle_buffer: Annotated[int, Field(ge=1)]


class EmaTrainParams(TrainParams):
    """A loop that ships the exponential moving average of its weights (the teacher and the students)."""

    ema_rate: Annotated[float, Field(ge=0, lt=1)]


class TeacherParams(Section):
    checkpoint: str | None  # official ResShift .pth (path or s3://): import instead of training
    arch: DenoiserArch
    unet: UNetParams
    swin: SwinUNetParams = SwinUNetParams()
    autoencoder: AutoencoderParams
    diffusion: DiffusionParams
    train: EmaTrainParams
    # Each training pair is rotated by a random multiple of 90° as it is drawn (the shards already flip): with a
    # few photos the teacher otherwise learns their orientations. Off reproduces ResShift (hflip only).
    rot90: bool

    @model_validator(mode="after")
    def _import_needs_swin(self) -> TeacherParams:
        if self.checkpoint is not None and self.arch != "resshift_swin":
            raise ValueError(f"checkpoint import needs arch 'resshift_swin', got '{self.arch}'")
        return self


class TrajectoriesParams(Section):
    batch_size: Annotated[int, Field(ge=1)]
    shard_size: Annotated[int, Field(ge=1)]
    mixed_precision: MixedPrecision


DistillRecipe = Literal["sinsr", "tadsr", "colearn"]
Weight = Annotated[float, Field(ge=0)]


class SinsrParams(Section):
    """SinSR (docs/methods.md §2.2): L = distill + inverse + gt, weights 1:1:1 in the reference config."""

    lambda_distill: Weight
    lambda_inverse: Weight
    lambda_gt: Weight


class TadsrParams(Section):
    """TAD-SR (docs/methods.md §3): L_G = MSE + λ_HSD·HSD + λ_adv·hinge-GAN on the frozen teacher encoder's
    features."""

    lambda_mse: Weight
    lambda_hsd: Weight
    lambda_adv: Weight
    hsd_steps: Annotated[int, Field(ge=1)]  # HSD re-noising step s ~ U{0..hsd_steps-1}
    c_dim: Annotated[int, Field(ge=1)]  # logits per position of each discriminator head
    disc_lr: Annotated[float, Field(gt=0)]


class ColearnParams(Section):
    """Co-learning (docs/methods.md §5): distill + GT regression + HQ and LQ adversarial terms, a learnable
    downsampler."""

    lambda_distill: Weight
    lambda_gt: Weight  # the student's L_denoise: x0 MSE against the HQ latent
    lambda_hq_adv: Weight
    lambda_lq_adv: Weight
    lambda_down: Weight  # the downsampler's L_denoise: G(HQ latent, noise) against y
    g_loss: Literal["non_saturating", "paper"]  # paper: E[1 - D(fake)] on probabilities
    downsampler: Literal["diffusion", "conv"]  # diffusion: the paper's (the student's architecture)
    disc_channels: Annotated[int, Field(ge=4)]
    disc_levels: Annotated[int, Field(ge=1)]
    c_dim: Annotated[int, Field(ge=1)]
    disc_lr: Annotated[float, Field(gt=0)]
    downsampler_lr: Annotated[float, Field(gt=0)]


class ImageLossParams(Section):
    """Image-space terms added to every recipe's generator loss, on the decoded one-step output against the HQ crop
    (docs/methods.md §2.4): λ_l1·L1 + λ_grad·L1 of the horizontal and vertical first differences + λ_grid·the same
    across latent cell borders only + λ_lpips·LPIPS."""

    lambda_l1: Weight
    lambda_grad: Weight
    lambda_grid: Weight
    lambda_lpips: Weight
    lpips_net: Literal["alex", "vgg"]
    # pixel_unshuffle teachers only: the student gets its own decoder (pixel shuffle + a small conv net across the
    # cell borders), trained by the image terms at `decoder_lr`; the encoder stays the teacher's
    refine_decoder: bool
    decoder_lr: Annotated[float, Field(gt=0)]


class DistillParams(Section):
    """One-step students distilled from the teacher; `recipes` lists the ones dvc trains (one stage each). A recipe's
    stage reads the shared keys and its own section only, so editing one recipe re-runs only its stage."""

    recipes: Annotated[list[DistillRecipe], Field(min_length=1)]
    targets: Literal["cached", "online"]  # online: run the teacher's T-step sampler inside the loop
    sinsr: SinsrParams
    tadsr: TadsrParams
    colearn: ColearnParams
    image: ImageLossParams
    sample_every: Annotated[int, Field(ge=1)]  # a sample-grid PNG every N steps
    val_batch_size: Annotated[int, Field(ge=1)]
    train: EmaTrainParams

    @field_validator("recipes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"recipes must not repeat, got {v}")
        return v


class BaselineParams(Section):
    """A compact GAN to compare the students with (docs/methods.md §6.4): Real-ESRGAN's SRVGGNetCompact generator and
    UNetDiscriminatorSN on the same train shards, L1 only for `l1_steps`, then L1 + λ_lpips·LPIPS + λ_gan·GAN."""

    num_feat: Annotated[int, Field(ge=4)]
    num_conv: Annotated[int, Field(ge=1)]
    disc_feat: Annotated[int, Field(ge=4)]
    l1_steps: Annotated[int, Field(ge=0)]
    lambda_l1: Weight
    lambda_lpips: Weight
    lpips_net: Literal["alex", "vgg"]
    lambda_gan: Weight
    disc_lr: Annotated[float, Field(gt=0)]
    train: TrainParams
