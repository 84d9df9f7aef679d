"""Params of the OSEDiff recipe (docs/methods.md §4): base model, LoRA, prompts, losses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from sr.config.base import ColorFix, Probability, Section
from sr.config.training import TrainParams

OSEDIFF_NEG_PROMPT = (
    "painting, oil painting, illustration, drawing, art, sketch, cartoon, CG Style, 3D render, unreal engine, "
    "blurring, dirty, messy, worst quality, low quality, frames, watermark, signature, jpeg artifacts, deformed, "
    "lowres, over-smooth"
)


class PromptParams(Section):
    """Text conditioning (docs/methods.md §4.4): none = the empty prompt, fixed = `text`, tagger = the tags a tagger
    (sr/models/tagger.py) reads off each HQ crop in training and off the upsampled LQ at inference, then `text`.
    The negative prompt only feeds the real score's classifier-free guidance."""

    kind: Literal["none", "fixed", "tagger"]
    text: str  # must be "" for kind none
    negative: str = OSEDIFF_NEG_PROMPT
    tagger_path: str | None = None  # a transformers image classifier or CLIP + tags.txt folder (path or s3://)
    tagger_threshold: Probability = 0.68  # RAM's default class threshold
    tagger_max_tags: Annotated[int, Field(ge=1)] = 16

    @model_validator(mode="after")
    def _consistent(self) -> PromptParams:
        if self.kind == "tagger" and self.tagger_path is None:
            raise ValueError("prompt kind 'tagger' needs tagger_path")
        if self.kind == "none" and self.text:
            raise ValueError(f"prompt kind 'none' takes no text, got {self.text!r} (use kind 'fixed')")
        return self


class LoraParams(Section):
    """PEFT LoRA on the VAE encoder and the UNet (docs/methods.md §4.1); the target patterns default to OSEDiff's.
    A module is adapted when its weight's name contains one of the patterns (bias and norm weights never)."""

    rank: Annotated[int, Field(ge=1)]
    alpha: Annotated[float, Field(gt=0)]  # scaling alpha/rank
    vae_targets: list[str] = ["conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out",
                              "to_k", "to_q", "to_v", "to_out.0"]  # fmt: skip
    unet_targets: list[str] = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in",
                               "conv_shortcut", "conv_out", "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"]  # fmt: skip


class SmallSDParams(Section):
    """The SD-shaped stand-in of the embedded default: same component classes as SD-2.1, CPU-sized."""

    vae_channels: list[Annotated[int, Field(ge=8)]]  # n levels: x2^(n-1) downscale (SD: 4 levels, x8)
    vae_layers_per_block: Annotated[int, Field(ge=1)]
    unet_channels: list[Annotated[int, Field(ge=8)]]
    unet_layers_per_block: Annotated[int, Field(ge=1)]
    attention_head_dim: Annotated[int, Field(ge=4)]
    cross_attention_dim: Annotated[int, Field(ge=8)]  # = text_hidden_size
    norm_num_groups: Annotated[int, Field(ge=1)]
    text_layers: Annotated[int, Field(ge=1)]
    text_heads: Annotated[int, Field(ge=1)]
    text_intermediate_size: Annotated[int, Field(ge=8)]

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
    """OSEDiff (docs/methods.md §4): LoRA'd SD VAE encoder + UNet, one step at t=999, L2 + LPIPS + VSD. It ships
    its trained weights, not an average: there is no EMA (train has no ema_rate). `train.mixed_precision` also sets
    the weight dtype of the frozen real-score UNet on a GPU."""

    checkpoint: str | None  # diffusers-format SD folder or s3:// prefix; None: build `small`
    small: SmallSDParams
    # brief pre-training of `small` (checkpoint None): the VAE as an autoencoder, then the UNet's eps-prediction
    base_vae_steps: Annotated[int, Field(ge=0)]
    base_steps: Annotated[int, Field(ge=0)]
    base_lr: Annotated[float, Field(gt=0)]
    lora: LoraParams
    prompt: PromptParams
    vae_sample: Literal["sample", "mode"]  # the reference samples the posterior even at test time
    lambda_l2: Annotated[float, Field(ge=0)]
    lambda_lpips: Annotated[float, Field(ge=0)]
    lambda_vsd: Annotated[float, Field(ge=0)]
    cfg_scale: Annotated[float, Field(ge=1)]
    t_min: Annotated[int, Field(ge=0)]
    t_max: Annotated[int, Field(le=1000)]  # VSD timesteps t ~ U[t_min, t_max)
    # the colour correction the student ships (docs/methods.md §4.6): its output aligned to the bicubic-upsampled LQ
    color_fix: ColorFix
    gradient_checkpointing: bool
    vae_tiling: bool
    train: TrainParams

    @model_validator(mode="after")
    def _t_range(self) -> OsediffParams:
        if not self.t_min < self.t_max:
            raise ValueError(f"need t_min < t_max, got t_min={self.t_min}, t_max={self.t_max}")
        return self
