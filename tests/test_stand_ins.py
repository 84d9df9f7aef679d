"""scripts/stand_ins.py: the official structures at full size, the CLIP tokenizer files, the weight rule."""

from __future__ import annotations

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from scripts.stand_ins import randomize, sd21_configs, write_clip_tokenizer


def test_full_size_sd21_has_stable_diffusion_2_1_base_parameter_counts():
    config = sd21_configs("full")
    with init_empty_weights():  # 1.3 G parameters without allocating them
        parts = {"unet": UNet2DConditionModel(**config["unet"]), "vae": AutoencoderKL(**config["vae"]),
                 "text_encoder": CLIPTextModel(CLIPTextConfig(**config["text_encoder"]))}
    counts = {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
    assert counts == {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840}


def test_tokenizer_files_tokenize_and_pad_like_sd2(tmp_path):
    write_clip_tokenizer(tmp_path / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path / "tokenizer")
    assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
    ids = tokenizer("a photo of a cat", padding="max_length", max_length=9).input_ids
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407, 0, 0]  # CLIP's ids; OpenCLIP pads with 0 ("!")


def test_weights_are_seeded_and_scaled_by_fan_in():
    def drawn(seed: int) -> dict[str, torch.Tensor]:
        model = torch.nn.Sequential(torch.nn.Linear(1024, 512), torch.nn.GroupNorm(32, 512))
        return randomize(model, seed).state_dict()

    a = drawn(3)
    assert all(torch.equal(a[k], v) for k, v in drawn(3).items()) and not torch.equal(drawn(4)["0.weight"], a["0.weight"])
    assert abs(a["0.weight"].std().item() - 1024**-0.5) < 0.002 and abs(a["0.bias"].std().item() - 0.02) < 0.005
    assert abs(a["1.weight"].mean().item() - 1) < 0.01 and a["1.weight"].std().item() < 0.03  # norm scales near 1
