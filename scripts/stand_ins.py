"""Stand-ins for the official weights the paper-scale configs import: random weights, the official structure, written
in the official file formats, so the import paths run end to end without the real downloads.

    python scripts/stand_ins.py --kind resshift --out weights/rehearsal --size tiny
    python scripts/stand_ins.py --kind sd21 --out weights/rehearsal/stable-diffusion-2-1-base --size tiny

--kind resshift writes OUT/resshift_realsrx4_s15_v1.pth, what ResShift's trainer saves as its EMA state (the DDP
model's state_dict: every key `module.`-prefixed, the Swin buffers included), and OUT/autoencoder_vq_f4.pth (a bare
VQModelTorch state_dict, as ResShift loads it with strict=True).

--kind sd21 writes OUT/ as stable-diffusion-2-1-base's diffusers folder: UNet2DConditionModel with SD-2's block layout
(cross-attention on the three upper levels, linear projections), a 4-level f8 AutoencoderKL, a CLIPTextModel with
OpenCLIP ViT-H's text tower as SD-2 ships it (23 layers, gelu), the CLIP BPE tokenizer files (vocab.json and
merges.txt built from the BPE table that openai-clip ships, pad token "!" as OpenCLIP pads with id 0), and the
PNDMScheduler config; weights as safetensors.

--size full is the official size (ResShift: UNetModelSwin 118.59 M + VQ-f4 55.3 M parameters; SD-2.1-base: about
1.3 G parameters, 5 GB). --size tiny keeps every structural choice and reduces widths: for resshift to the
`teacher.swin` and `teacher.autoencoder.vq` of configs/rehearsal-resshift.yaml, which imports these files.

Weights are drawn from one seeded generator: each weight matrix or kernel N(0, 1/fan_in), norm scales 1 + N(0, 0.02²),
biases N(0, 0.02²). A module's own init would leave ResShift's zero-initialised residual branches at exactly zero,
which no released checkpoint has and which would hide half of the network from the import checks.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import io
import json
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from sr.config import SwinUNetParams, VQParams, load_overlay
from sr.models.autoencoder import vq_config
from sr.models.resshift_swin import ResShiftSwinUNet
from sr.models.vq_f4 import VQF4
from sr.storage import atomic_dir, atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]
REHEARSAL = REPO / "configs" / "rehearsal-resshift.yaml"
UNET_FILE = "resshift_realsrx4_s15_v1.pth"
VQ_FILE = "autoencoder_vq_f4.pth"
Size = Literal["tiny", "full"]

# stable-diffusion-2-1-base, and the same structure at reduced width (attention heads of 16 channels instead of 64)
SD21 = {
    "full": {"unet": (320, 640, 1280, 1280), "heads": (5, 10, 20, 20), "text": 1024, "text_heads": 16,
             "vae": (128, 256, 512, 512)},
    "tiny": {"unet": (32, 64, 128, 128), "heads": (2, 4, 8, 8), "text": 64, "text_heads": 4,
             "vae": (32, 64, 128, 128)},
}


# ---------------------------------------------------------------------------------------------------- weights


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Every floating-point tensor of `module`'s state_dict redrawn (see the module docstring), in key order."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in sorted(module.state_dict().items()):
        if not value.is_floating_point():
            state[key] = value
        elif value.dim() >= 2:
            state[key] = torch.randn(value.shape, generator=g) * (value[0].numel() ** -0.5)
        elif key.endswith("weight"):
            state[key] = 1 + 0.02 * torch.randn(value.shape, generator=g)
        else:
            state[key] = 0.02 * torch.randn(value.shape, generator=g)
    module.load_state_dict(state)
    return module.eval()


def official_unet_dict(model: ResShiftSwinUNet) -> dict[str, torch.Tensor]:
    """What ResShift's trainer writes: every state_dict entry incl. the Swin buffers, DDP-prefixed."""
    state = dict(model.state_dict())
    state.update({k: v for k, v in model.named_buffers() if k.endswith(("relative_position_index", "attn_mask"))})
    return {"module." + k: v for k, v in state.items()}


def _save_pth(obj: object, path: Path) -> Path:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


# ---------------------------------------------------------------------------------------------------- ResShift


def resshift_architecture(size: Size) -> tuple[SwinUNetParams, VQParams]:
    """The official UNetModelSwin / VQ-f4 configs, or the reduced ones configs/rehearsal-resshift.yaml imports."""
    if size == "full":
        return SwinUNetParams(), VQParams()
    teacher = load_overlay(REHEARSAL)["teacher"]
    return SwinUNetParams(**teacher["swin"]), VQParams(**teacher["autoencoder"]["vq"])


def write_resshift(out: Path, swin: SwinUNetParams, vq: VQParams, seed: int) -> tuple[Path, Path]:
    """OUT/resshift_realsrx4_s15_v1.pth and OUT/autoencoder_vq_f4.pth; returns their paths."""
    unet = randomize(ResShiftSwinUNet(swin), seed)
    unet_path = _save_pth(official_unet_dict(unet), out / UNET_FILE)
    del unet  # the full size holds 118.59 M + 55.3 M parameters: one at a time
    vq_path = _save_pth(randomize(VQF4(**vq_config(vq)), seed + 1).state_dict(), out / VQ_FILE)
    return unet_path, vq_path


# ---------------------------------------------------------------------------------------------------- SD-2.1-base


def write_clip_tokenizer(folder: Path) -> None:
    """SD-2's tokenizer folder: vocab.json and merges.txt of the CLIP BPE (49408 tokens, 48894 merges), built from
    the table openai-clip ships the way the released files were (the 256 byte characters, the same with the word-end
    mark, one token per merge, then the start and end tokens), and the two JSON files naming the special tokens."""
    table = Path(importlib.metadata.distribution("openai-clip").locate_file("clip/bpe_simple_vocab_16e6.txt.gz"))
    merges = gzip.decompress(table.read_bytes()).decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(256 - len(printable))]
    tokens = [*chars, *(c + "</w>" for c in chars), *(m.replace(" ", "") for m in merges),
              "<|startoftext|>", "<|endoftext|>"]
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
               "pad_token": "!"}  # OpenCLIP pads with id 0, which is "!"
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {**special, "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
              "errors": "replace", "add_prefix_space": False}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def sd21_configs(size: Size) -> dict[str, dict]:
    """The constructor arguments of SD-2.1-base's UNet, VAE and text encoder (its CLIPTextConfig) at `size`."""
    w = SD21[size]
    return {
        "unet": {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
                 "block_out_channels": w["unet"], "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                 "attention_head_dim": w["heads"],  # diffusers' historical name: head counts (SD-2: 64 channels each)
                 "cross_attention_dim": w["text"], "use_linear_projection": True, "upcast_attention": False,
                 "norm_num_groups": 32},
        "vae": {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
                "block_out_channels": w["vae"], "down_block_types": ("DownEncoderBlock2D",) * 4,
                "up_block_types": ("UpDecoderBlock2D",) * 4, "norm_num_groups": 32, "sample_size": 512,
                "scaling_factor": 0.18215},
        # SD-2's text_encoder/config.json: OpenCLIP-H's text tower without its last layer; the token ids 0/1/2 are
        # what that file declares (transformers then pools at the argmax id, the end token, as OpenCLIP does)
        "text_encoder": {"vocab_size": 49408, "hidden_size": w["text"], "intermediate_size": 4 * w["text"],
                         "num_hidden_layers": 23, "num_attention_heads": w["text_heads"],
                         "max_position_embeddings": 77, "hidden_act": "gelu", "projection_dim": 512,
                         "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1},
    }


def sd21_models(size: Size, seed: int) -> dict[str, object]:
    """SD-2.1-base's UNet, VAE, text encoder (weights from `seed`) and PNDM scheduler at `size`."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    config = sd21_configs(size)
    parts = {"unet": UNet2DConditionModel(**config["unet"]), "vae": AutoencoderKL(**config["vae"]),
             "text_encoder": CLIPTextModel(CLIPTextConfig(**config["text_encoder"]))}
    for i, module in enumerate(parts.values()):
        randomize(module, seed + i)
    parts["scheduler"] = PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", set_alpha_to_one=False, skip_prk_steps=True,
                                       steps_offset=1, prediction_type="epsilon")
    return parts


def write_sd21(out: Path, size: Size, seed: int) -> Path:
    """OUT/ as stable-diffusion-2-1-base's diffusers folder (written whole or not at all)."""
    from transformers import CLIPImageProcessor

    parts = sd21_models(size, seed)
    index = {"_class_name": "StableDiffusionPipeline", "requires_safety_checker": False, "safety_checker": [None, None],
             "feature_extractor": ["transformers", "CLIPImageProcessor"], "tokenizer": ["transformers", "CLIPTokenizer"]}
    with atomic_dir(out) as tmp:
        for name, part in parts.items():
            part.save_pretrained(tmp / name)
            index[name] = ["transformers" if name == "text_encoder" else "diffusers", type(part).__name__]
        write_clip_tokenizer(tmp / "tokenizer")
        CLIPImageProcessor().save_pretrained(tmp / "feature_extractor")  # the safety checker's input; unused here
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    return out


# ---------------------------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=["resshift", "sd21"], required=True)
    ap.add_argument("--out", type=Path, required=True, help="resshift: the folder of the two .pth; sd21: the folder")
    ap.add_argument("--size", choices=["tiny", "full"], default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.kind == "resshift":
        written = write_resshift(args.out, *resshift_architecture(args.size), args.seed)
    else:
        written = (write_sd21(args.out, args.size, args.seed),)
    print(f"stand_ins: {args.kind} ({args.size}) -> {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
