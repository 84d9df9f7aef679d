"""OSEDiff (docs/methods.md §4): Stable Diffusion's VAE encoder and UNet with LoRA, run once at t=999.

    z_lq  = VAE_enc_LoRA(lq_up) * scaling_factor          (posterior sample or mode)
    eps   = UNet_LoRA(z_lq, t=999, prompt)                (no noise is added to z_lq)
    z_hat = (z_lq - sqrt(1 - abar_999) eps) / sqrt(abar_999)
    hq_hat = clamp(VAE_dec(z_hat / scaling_factor), -1, 1)   (decoder frozen)

Trainable: LoRA on the VAE encoder (+ quant_conv) and the UNet (three adapters: down / up / other), plus the whole
UNet `conv_in`. The fake score net of the VSD loss is another LoRA'd copy of the UNet with every adapter active
(the reference activates only the last one, §4.1; we do not reproduce that).

LoRA is injected with `peft.inject_adapter_in_model` on exact module names, so the adapted set is explicit, saved
next to the weights, and identical at load. Gaussian LoRA init draws from a passed torch.Generator.

A student folder (`OSEDiffStudent.save_pretrained` / `from_pretrained`, `model_type: "osediff"` in config.json) holds
the LoRA + conv_in weights, the adapted module names, and the base model: its URI, or for the embedded default the
base itself under base/. A merged student is a standalone diffusers folder with the same config.json.
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UNet2DConditionModel
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file, save
from torch import nn

from sr.config import LoraParams, PromptParams
from sr.config.base import ColorFix, Section
from sr.diffusion.sd import ONE_STEP_T, one_step_x0
from sr.models.colorfix import color_fix
from sr.models.sd import SDComponents, load_sd, save_sd
from sr.models.tagger import Prompter, TaggerSpec, load_tagger
from sr.seeds import Draws
from sr.storage import atomic_dir, atomic_write_bytes, atomic_write_text, materialize

VaeSample = Literal["sample", "mode"]
LORA_FILE = "lora.safetensors"
MODULES_FILE = "lora_modules.json"
CONFIG_FILE = "config.json"
BASE_DIR = "base"  # the embedded default's base model, inside the student folder (there is no hub to name)


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


class AdapterState:
    """A LoRA'd module as a checkpoint sees it: only its adapter weights (and the UNet's conv_in), loaded non-strictly
    into the module built the same way."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def state_dict(self) -> dict[str, torch.Tensor]:
        return adapter_state(self.module)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state, strict=False)


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
        self, lq_up: torch.Tensor, prompt_embeds: torch.Tensor, generator: torch.Generator | Draws | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """lq bicubic-upsampled to HQ size in [-1, 1] and (1 or B, L, D) prompt embeddings -> (hq_hat, z_hat)."""
        batch = lq_up.shape[0]
        if prompt_embeds.shape[0] == 1 and batch > 1:
            prompt_embeds = prompt_embeds.expand(batch, -1, -1)
        scaling = self.vae.config.scaling_factor
        posterior = self.vae.encode(lq_up).latent_dist
        if self.vae_sample == "mode":
            z_lq = posterior.mode() * scaling
        elif isinstance(generator, Draws):  # training: this process's rows of the global batch's draw
            z_lq = (posterior.mean + posterior.std * generator.randn(posterior.mean.shape).to(posterior.mean)) * scaling
        else:
            z_lq = posterior.sample(generator) * scaling
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


# ---------------------------------------------------------------------------------------------------- student


def upsample(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic ×scale, clamped to [-1, 1]: the generator's input."""
    return F.interpolate(lq, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


class OSEDiffConfig(Section):
    """What an OSEDiff student folder declares (config.json)."""

    model_type: Literal["osediff"] = "osediff"
    base: str  # "base" (the folder's own base/), a path or s3:// URI of the SD checkpoint, or "merged from ..."
    scale: int
    vae_sample: VaeSample
    prompt: str  # the fixed text after any tags
    tagger: TaggerSpec | None = None  # inference tags each upsampled LQ with the tagger it was trained with
    merged: bool = False
    inference_steps: int = 1
    color_fix: ColorFix = "none"  # applied to every output, towards the bicubic-upsampled LQ (docs/methods.md §4.6)


class OSEDiffStudent(nn.Module):
    """lq in [-1, 1] (B,3,h,w) -> hq in [-1, 1] (B,3,h·scale,w·scale) in one step. The VAE posterior draw (when
    the student samples) comes from a generator seeded afresh on every call, so outputs are reproducible."""

    def __init__(self, gen: OSEDiffGenerator, prompter: Prompter, config: OSEDiffConfig, seed: int = 0) -> None:
        super().__init__()
        self.gen, self.prompter, self.config, self.seed = gen.eval(), prompter, config, seed

    @property
    def scale(self) -> int:
        return self.config.scale

    @torch.no_grad()
    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        lq_up = upsample(lq, self.scale)
        h, w = lq_up.shape[-2:]
        pad_h, pad_w = -h % 8, -w % 8  # SD's VAE downsamples ×8 (the small default ×4, which 8 also covers)
        if pad_h or pad_w:
            lq_up = F.pad(lq_up, (0, pad_w, 0, pad_h), mode="reflect")
        rng = torch.Generator(device=lq.device).manual_seed(self.seed)
        out = self.gen(lq_up, self.prompter(lq_up), rng)[0][..., :h, :w]
        return color_fix(out, lq_up[..., :h, :w].clamp(-1, 1), self.config.color_fix)

    def save_pretrained(self, folder: str | Path, base_folder: Path | None = None) -> None:
        """LoRA + conv_in weights, the adapted module names, config.json, and `base_folder` (the embedded default's
        base model) copied under base/; built in a temp sibling and renamed into place."""
        with atomic_dir(Path(folder)) as tmp:
            self.gen.save(tmp)
            if base_folder is not None:
                shutil.copytree(base_folder, tmp / BASE_DIR)
            (tmp / CONFIG_FILE).write_text(json.dumps(self.config.model_dump(mode="json"),
                                                      indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, folder: str | Path, cache_dir: Path | None = None) -> OSEDiffStudent:
        """A student saved by `save_pretrained` (LoRA on its base) or by `merge_student` (standalone SD folder)."""
        folder = Path(folder)
        config = read_osediff_config(folder)
        cache_dir = cache_dir or folder.parent / ".cache"
        if config.merged:
            sd = load_sd(folder)
            gen = OSEDiffGenerator(sd.vae, sd.unet, sd.scheduler.alphas_cumprod, config.vae_sample,
                                   {"vae": {}, "unet": {}}, 0, 0.0)
        else:
            sd = base_sd(folder, config, cache_dir)
            gen = load_generator(sd, folder, config.vae_sample)
        prompter = Prompter(sd.text_encoder, sd.tokenizer, config.prompt, load_tagger(config.tagger, cache_dir))
        return cls(gen.requires_grad_(False), prompter, config)


def read_osediff_config(folder: Path) -> OSEDiffConfig:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not an OSEDiff student folder (missing {CONFIG_FILE})")
    return OSEDiffConfig.model_validate(json.loads(path.read_text()))


def base_sd(folder: Path, config: OSEDiffConfig, cache_dir: Path) -> SDComponents:
    base = folder / BASE_DIR if config.base == BASE_DIR else config.base
    return load_sd(materialize(str(base), cache_dir))


def merge_student(folder: str | Path, out_dir: str | Path, cache_dir: Path | None = None) -> None:
    """Fold the LoRA into the weights: a standalone diffusers SD folder (the generator's VAE and UNet, the base's
    text encoder, tokenizer and scheduler) plus config.json; `from_pretrained` reads it like the unmerged student."""
    folder = Path(folder)
    config = read_osediff_config(folder)
    sd = base_sd(folder, config, cache_dir or folder.parent / ".cache")
    merged = merge(load_generator(sd, folder, config.vae_sample))
    save_sd(SDComponents(merged.vae, merged.unet, sd.text_encoder, sd.tokenizer, sd.scheduler), out_dir)
    config = config.model_copy(update={"merged": True, "base": f"merged from {config.base}"})
    atomic_write_text(Path(out_dir) / CONFIG_FILE,
                      json.dumps(config.model_dump(mode="json"), indent=2) + "\n")


def prompt_config(p: PromptParams) -> tuple[str, TaggerSpec | None]:
    """The fixed text and the tagger a student trained with prompts `p` uses at inference."""
    tagger = TaggerSpec(path=p.tagger_path, threshold=p.tagger_threshold, max_tags=p.tagger_max_tags) \
        if p.kind == "tagger" else None
    return p.text, tagger
