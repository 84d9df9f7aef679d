"""Stable Diffusion's components as diffusers/transformers objects: load and save a diffusers-format folder, build
the small SD-shaped stand-in of the embedded default, and encode prompts. OSEDiff (sr/models/osediff.py) adapts these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from sr.config import SmallSDParams
from sr.storage import atomic_dir

SD_PARTS = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")


@dataclass
class SDComponents:
    vae: AutoencoderKL
    unet: UNet2DConditionModel
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: DDPMScheduler


# ---------------------------------------------------------------------------------------------------- SD checkpoints


def load_sd(folder: str | Path) -> SDComponents:
    """The five SD components from a local diffusers-format folder (vae/, unet/, text_encoder/, tokenizer/, scheduler/).

    The scheduler is read as a DDPMScheduler whatever class the folder names (SD-2.1 ships a PNDM config)."""
    folder = Path(folder)
    for part in SD_PARTS:
        if not (folder / part).is_dir():
            raise FileNotFoundError(f"{folder}: not a diffusers Stable Diffusion folder (missing '{part}/')")
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    if scheduler.config.prediction_type != "epsilon":
        raise ValueError(
            f"{folder}/scheduler: prediction_type '{scheduler.config.prediction_type}' unsupported; "
            "OSEDiff needs an epsilon model such as SD-2.1-base"
        )
    components = SDComponents(
        vae=AutoencoderKL.from_pretrained(folder / "vae"),
        unet=UNet2DConditionModel.from_pretrained(folder / "unet"),
        text_encoder=CLIPTextModel.from_pretrained(folder / "text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        scheduler=scheduler,
    )
    for module in (components.vae, components.unet, components.text_encoder):
        module.eval().requires_grad_(False)
    return components


def save_sd(components: SDComponents, folder: str | Path) -> None:
    """Write a diffusers-format folder (safetensors); built in a temp sibling and renamed into place."""
    with atomic_dir(Path(folder)) as tmp:
        for part in SD_PARTS:
            getattr(components, part).save_pretrained(tmp / part)
        index = {
            "_class_name": "StableDiffusionPipeline",
            "requires_safety_checker": False,
            "safety_checker": [None, None],
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
        }
        for part, lib in zip(SD_PARTS, ("diffusers", "diffusers", "transformers", "transformers", "diffusers")):
            index[part] = [lib, type(getattr(components, part)).__name__]
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2))


def _byte_level_chars() -> list[str]:
    """The 256 printable stand-ins that byte-level BPE (GPT-2 / CLIP) uses for the bytes 0..255."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = [], 0
    for b in range(256):
        if b in printable:
            codes.append(b)
        else:
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def small_tokenizer() -> CLIPTokenizer:
    """An offline CLIP tokenizer: the 512 byte-level tokens (with and without the word-end mark), no merges, so
    text is tokenized per character. Same class and call interface as SD's tokenizer, no hub download."""
    chars = _byte_level_chars()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = CLIPTokenizer(vocab={tok: i for i, tok in enumerate(tokens)}, merges=[])
    tokenizer.model_max_length = 77
    return tokenizer


def build_small_sd(p: SmallSDParams, seed: int) -> SDComponents:
    """A randomly initialised SD-shaped model: x8 KL VAE with 4 latent channels, cross-attention UNet (linear
    projections like SD-2.x), CLIP text encoder, DDPM scaled-linear scheduler."""
    tokenizer = small_tokenizer()
    levels = len(p.vae_channels)
    down = ["CrossAttnDownBlock2D"] * (len(p.unet_channels) - 1) + ["DownBlock2D"]
    up = ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (len(p.unet_channels) - 1)
    # diffusers and transformers initialise from the global RNG: fork it so the caller's state is untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * levels,
            up_block_types=("UpDecoderBlock2D",) * levels,
            block_out_channels=tuple(p.vae_channels),
            layers_per_block=p.vae_layers_per_block,
            latent_channels=4,
            norm_num_groups=p.norm_num_groups,
            sample_size=64,
            scaling_factor=0.18215,
        )
        unet = UNet2DConditionModel(
            sample_size=64 // 2 ** (levels - 1),
            in_channels=4,
            out_channels=4,
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            block_out_channels=tuple(p.unet_channels),
            layers_per_block=p.unet_layers_per_block,
            attention_head_dim=p.attention_head_dim,
            cross_attention_dim=p.cross_attention_dim,
            norm_num_groups=p.norm_num_groups,
            use_linear_projection=True,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=p.cross_attention_dim,
                intermediate_size=p.text_intermediate_size,
                num_hidden_layers=p.text_layers,
                num_attention_heads=p.text_heads,
                max_position_embeddings=77,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
    )
    for module in (vae, unet, text_encoder):
        module.eval().requires_grad_(False)
    return SDComponents(vae, unet, text_encoder, tokenizer, scheduler)


@torch.no_grad()
def encode_prompts(text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer, texts: list[str]) -> torch.Tensor:
    """CLIP last hidden states (B, 77, D) for a batch of prompts, as SD conditions its UNet."""
    ids = tokenizer(
        texts, max_length=tokenizer.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
    ).input_ids
    return text_encoder(ids.to(text_encoder.device))[0]
