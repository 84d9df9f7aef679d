"""Tiny taggers in the transformers formats that sr/models/tagger.py loads, written with save_pretrained."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
)

from sr.models.sd import small_tokenizer

TAGS = ["cat", "dog", "red", "sky"]


def save_classifier_tagger(folder: Path, multi_label: bool = True, bias: list[float] | None = None) -> Path:
    """A 1-layer ViT classifier over TAGS; with `bias` its classifier ignores the image and scores are fixed."""
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=len(TAGS), id2label=dict(enumerate(TAGS)),
        label2id={t: i for i, t in enumerate(TAGS)},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    model = ViTForImageClassification(config)
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def save_clip_tagger(folder: Path, tags: list[str] | None = TAGS) -> Path:
    """A tiny random CLIP with the offline character tokenizer; `tags` goes to tags.txt (None: no vocabulary)."""
    torch.manual_seed(0)
    tokenizer = small_tokenizer()
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "projection_dim": 8,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 1, "num_attention_heads": 2, "projection_dim": 8},
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    if tags is not None:
        (folder / "tags.txt").write_text("\n".join(tags) + "\n")
    return folder
