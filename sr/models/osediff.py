"""OSEDiff (METHODS.md §4): Stable Diffusion's VAE encoder and UNet with LoRA, run once at t=999.

    z_lq  = VAE_enc_LoRA(lq_up) * scaling_factor          (posterior sample or mode)
    eps   = UNet_LoRA(z_lq, t=999, prompt)                (no noise is added to z_lq)
    z_hat = (z_lq - sqrt(1 - abar_999) eps) / sqrt(abar_999)
    hq_hat = clamp(VAE_dec(z_hat / scaling_factor), -1, 1)   (decoder frozen)

Trainable: LoRA on the VAE encoder (+ quant_conv) and the UNet (three adapters: down / up / other), plus the whole
UNet `conv_in`. The fake score net of the VSD loss is another LoRA'd copy of the UNet with every adapter active
(the reference activates only the last one, §4.3; we do not reproduce that).

LoRA is injected with `peft.inject_adapter_in_model` on exact module names, so the adapted set is explicit, saved
next to the weights, and identical at load. Gaussian LoRA init draws from a passed torch.Generator.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file, save
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from sr.config import LoraParams, SmallSDParams
from sr.diffusion.sd import ONE_STEP_T, one_step_x0
from sr.storage import atomic_dir, atomic_write_bytes, atomic_write_text

VaeSample = Literal["sample", "mode"]
LORA_FILE = "lora.safetensors"
MODULES_FILE = "lora_modules.json"
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


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# ---------------------------------------------------------------------------------------------------- LoRA


def lora_targets(model: nn.Module, patterns: list[str], kind: Literal["vae", "unet"]) -> dict[str, list[str]]:
    """Names of the modules to adapt, grouped by adapter, with the reference's substring rule on weight names.

    vae: encoder modules plus quant_conv (never the decoder or post_quant_conv), one adapter `default_encoder`.
    unet: `default_encoder` (down_blocks, conv_in), `default_decoder` (up_blocks, conv_out), `default_others`."""
    groups: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        if not name.endswith(".weight") or "norm" in name or not any(pat in name for pat in patterns):
            continue
        module = name[: -len(".weight")]
        if kind == "vae":
            top = module.split(".")[0]
            if top != "encoder" and module != "quant_conv":
                continue
            adapter = "default_encoder"
        elif "down_blocks" in module or module == "conv_in":
            adapter = "default_encoder"
        elif "up_blocks" in module or module == "conv_out":
            adapter = "default_decoder"
        else:
            adapter = "default_others"
        groups.setdefault(adapter, []).append(module)
    return groups


def add_lora(
    model: nn.Module, groups: dict[str, list[str]], rank: int, alpha: float, generator: torch.Generator
) -> None:
    """Inject one LoRA adapter per group, make every adapter active on its layers, init A ~ N(0, 1/rank), B = 0."""
    for adapter, modules in groups.items():
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=modules, bias="none")
        with warnings.catch_warnings():  # peft warns that a second adapter is "multiple adapters": intended here
            warnings.simplefilter("ignore", UserWarning)
            inject_adapter_in_model(config, model, adapter_name=adapter)
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            # peft may leave only the last injected adapter active; each layer here holds exactly one adapter
            module.set_adapter(list(module.lora_A.keys()))
            for adapter in module.lora_A:
                a = module.lora_A[adapter].weight
                a.data.copy_(torch.randn(a.shape, generator=generator, device=generator.device) / rank)
                module.lora_B[adapter].weight.data.zero_()
    model.requires_grad_(False)
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.requires_grad_(True)


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA delta into its base layer and put the plain layer back; returns the same model."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge(adapter_names=list(module.lora_A.keys()))
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.get_base_layer())
    return model


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The saved weights: LoRA A/B of every adapter plus the whole UNet conv_in (base layer included)."""
    return {
        k: v.detach().contiguous()
        for k, v in model.state_dict().items()
        if "lora_" in k or k.startswith("unet.conv_in.")
    }


def make_fake_score(unet: UNet2DConditionModel, lora: LoraParams, generator: torch.Generator) -> UNet2DConditionModel:
    """The VSD fake score net: a copy of the frozen UNet with all three LoRA adapters active; only LoRA trains."""
    fake = copy.deepcopy(unet)
    add_lora(fake, lora_targets(fake, lora.unet_targets, "unet"), lora.rank, lora.alpha, generator)
    return fake.train()


# ---------------------------------------------------------------------------------------------------- generator


class OSEDiffGenerator(nn.Module):
    """The one-step SR network. Build it with `make_generator`, `load_generator` or `merge`."""

    def __init__(
        self,
        vae: AutoencoderKL,
        unet: UNet2DConditionModel,
        alphas_cumprod: torch.Tensor,
        vae_sample: VaeSample,
        modules: dict,
        rank: int,
        alpha: float,
    ) -> None:
        super().__init__()
        self.vae, self.unet = vae, unet
        # a plain float64 CPU attribute, not a buffer: `.half()` must not round abar_999 (the 1/sqrt is ~14.6)
        self.alphas_cumprod = alphas_cumprod.detach().double().cpu()
        self.vae_sample = vae_sample
        self.modules_adapted = modules  # {"vae": {adapter: [module names]}, "unet": {...}}
        self.rank, self.alpha = rank, alpha

    def set_memory_options(self, gradient_checkpointing: bool, vae_tiling: bool) -> None:
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            self.vae.enable_gradient_checkpointing()
        if vae_tiling:
            self.vae.enable_tiling()

    def forward(
        self, lq_up: torch.Tensor, prompt_embeds: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """lq bicubic-upsampled to HQ size in [-1, 1] and (1 or B, L, D) prompt embeddings -> (hq_hat, z_hat)."""
        batch = lq_up.shape[0]
        if prompt_embeds.shape[0] == 1 and batch > 1:
            prompt_embeds = prompt_embeds.expand(batch, -1, -1)
        scaling = self.vae.config.scaling_factor
        posterior = self.vae.encode(lq_up).latent_dist
        z_lq = (posterior.sample(generator) if self.vae_sample == "sample" else posterior.mode()) * scaling
        t = torch.full((batch,), ONE_STEP_T, dtype=torch.long, device=lq_up.device)
        eps = self.unet(z_lq, t, encoder_hidden_states=prompt_embeds.to(z_lq.dtype)).sample
        z_hat = one_step_x0(z_lq, eps, self.alphas_cumprod)
        hq_hat = self.vae.decode(z_hat / scaling).sample.clamp(-1, 1)
        return hq_hat, z_hat

    def save(self, folder: str | Path) -> None:
        """LoRA + conv_in weights (safetensors) and the adapted module names (JSON), each written atomically."""
        if not self.modules_adapted["unet"]:
            raise ValueError(f"{folder}: a merged generator has no LoRA to save; save the unmerged one")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"rank": self.rank, "alpha": self.alpha, "modules": self.modules_adapted}
        atomic_write_bytes(folder / LORA_FILE, save(adapter_state(self)))
        atomic_write_text(folder / MODULES_FILE, json.dumps(meta, indent=1))


def _assemble(
    sd: SDComponents, modules: dict, rank: int, alpha: float, vae_sample: VaeSample, generator: torch.Generator
) -> OSEDiffGenerator:
    vae, unet = copy.deepcopy(sd.vae), copy.deepcopy(sd.unet)
    add_lora(vae, modules["vae"], rank, alpha, generator)
    add_lora(unet, modules["unet"], rank, alpha, generator)
    unet.conv_in.requires_grad_(True)  # conv_in is fully fine-tuned (and also carries LoRA, as in the reference)
    return OSEDiffGenerator(vae, unet, sd.scheduler.alphas_cumprod, vae_sample, modules, rank, alpha)


def make_generator(
    sd: SDComponents, lora: LoraParams, vae_sample: VaeSample, generator: torch.Generator
) -> OSEDiffGenerator:
    """A fresh generator on copies of the SD VAE and UNet (the originals stay frozen for the real score)."""
    modules = {
        "vae": lora_targets(sd.vae, lora.vae_targets, "vae"),
        "unet": lora_targets(sd.unet, lora.unet_targets, "unet"),
    }
    if not modules["vae"] or not modules["unet"]:
        raise ValueError(f"LoRA targets match no VAE encoder or UNet module: {lora.vae_targets} / {lora.unet_targets}")
    return _assemble(sd, modules, lora.rank, lora.alpha, vae_sample, generator)


def load_generator(sd: SDComponents, folder: str | Path, vae_sample: VaeSample) -> OSEDiffGenerator:
    """Rebuild a generator saved by `OSEDiffGenerator.save` on top of the same SD checkpoint."""
    folder = Path(folder)
    for name in (LORA_FILE, MODULES_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: missing {name}")
    meta = json.loads((folder / MODULES_FILE).read_text())
    gen = _assemble(sd, meta["modules"], meta["rank"], meta["alpha"], vae_sample, torch.Generator().manual_seed(0))
    state = load_file(folder / LORA_FILE)
    expected = set(adapter_state(gen))
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{folder / LORA_FILE}: does not match {MODULES_FILE} (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    gen.load_state_dict(state, strict=False)
    return gen


def merge(gen: OSEDiffGenerator) -> OSEDiffGenerator:
    """A standalone copy with every LoRA folded into its weights: plain diffusers modules, same outputs."""
    merged = copy.deepcopy(gen)
    merge_lora(merged.vae)
    merge_lora(merged.unet)
    merged.requires_grad_(False)
    merged.modules_adapted = {"vae": {}, "unet": {}}
    return merged
