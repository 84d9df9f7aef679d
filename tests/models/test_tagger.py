"""Prompt taggers (sr/models/tagger.py) on tiny transformers-format stand-ins saved by the tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr.config import PromptParams
from sr.models.osediff import prompt_config
from sr.models.sd import build_small_sd, encode_prompts, small_tokenizer
from sr.models.tagger import Prompter, Tagger, TaggerSpec, join_prompt, load_tagger
from tests.pipeline_fixtures import default_params
from tests.tagger_fixtures import TAGS, save_classifier_tagger, save_clip_tagger


def _images(n: int = 2, size: int = 40) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_multi_label_classifier_keeps_tags_over_threshold_best_first(tmp_path):
    folder = save_classifier_tagger(tmp_path / "vit", bias=[1.0, -3.0, 3.0, -5.0])  # sigmoid .731 .047 .953 .007
    probs = Tagger(folder, 0.68, 16).probabilities(_images())
    expected = torch.sigmoid(torch.tensor([1.0, -3.0, 3.0, -5.0]))
    torch.testing.assert_close(probs, expected.expand(2, -1), rtol=0, atol=1e-6)
    assert Tagger(folder, 0.68, 16)(_images()) == ["red, cat", "red, cat"]
    assert Tagger(folder, 0.68, 1)(_images(1)) == ["red"]
    assert Tagger(folder, 0.99, 16)(_images(1)) == ["red"]  # the top tag even below the threshold


def test_single_label_classifier_uses_softmax(tmp_path):
    folder = save_classifier_tagger(tmp_path / "vit", multi_label=False, bias=[0.0, 0.0, math.log(2.0), 0.0])
    probs = Tagger(folder, 0.3, 16).probabilities(_images(1))
    torch.testing.assert_close(probs, torch.tensor([[0.2, 0.2, 0.4, 0.2]]), rtol=0, atol=1e-6)
    assert Tagger(folder, 0.3, 16)(_images(1)) == ["red"]


def test_classifier_reads_the_image_through_its_processor(tmp_path):
    from transformers import ViTForImageClassification, ViTImageProcessor

    folder = save_classifier_tagger(tmp_path / "vit")
    images = _images(3)
    pixels = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    inputs = ViTImageProcessor.from_pretrained(folder)(images=list(np.asarray(pixels)), return_tensors="pt")
    with torch.no_grad():
        expected = ViTForImageClassification.from_pretrained(folder)(**inputs).logits.sigmoid()
    probs = Tagger(folder, 0.5, 16).probabilities(images)
    torch.testing.assert_close(probs, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(probs[0], probs[1])  # different images, different tags


def test_clip_zero_shot_over_the_vocabulary(tmp_path):
    from transformers import CLIPImageProcessor, CLIPModel

    folder = save_clip_tagger(tmp_path / "clip")
    images = _images(2)
    tagger = Tagger(folder, 0.0, 2)
    assert tagger.tags == TAGS
    model, tokenizer = CLIPModel.from_pretrained(folder), small_tokenizer()
    pixels = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    inputs = CLIPImageProcessor.from_pretrained(folder)(images=list(np.asarray(pixels)), return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=tokenizer(TAGS, padding=True, return_tensors="pt").input_ids, **inputs)
    expected = out.logits_per_image.softmax(-1)
    torch.testing.assert_close(tagger.probabilities(images), expected, rtol=1e-5, atol=1e-6)
    texts = tagger(images)
    for row, text in zip(expected, texts):
        assert text == ", ".join(TAGS[i] for i in row.argsort(descending=True)[:2].tolist())


def test_bad_tagger_folders_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"/nope: not a transformers tagger folder \(missing config.json\)$"):
        Tagger(tmp_path / "nope", 0.5, 4)
    folder = save_clip_tagger(tmp_path / "clip", tags=None)
    with pytest.raises(FileNotFoundError, match=r"/clip: a CLIP tagger needs tags.txt, one tag per line$"):
        Tagger(folder, 0.5, 4)
    (folder / "tags.txt").write_text("\n\n")
    with pytest.raises(ValueError, match=r"tags.txt: no tags$"):
        Tagger(folder, 0.5, 4)


def test_load_tagger_follows_the_prompt_kind(tmp_path):
    folder = save_classifier_tagger(tmp_path / "vit", bias=[1.0, -3.0, 3.0, -5.0])
    text, spec = prompt_config(PromptParams(kind="fixed", text="x"))
    assert text == "x" and spec is None and load_tagger(spec, tmp_path / "cache") is None
    text, spec = prompt_config(PromptParams(kind="tagger", text="", tagger_path=str(folder), tagger_max_tags=1))
    assert spec == TaggerSpec(path=str(folder), threshold=0.68, max_tags=1)
    tagger = load_tagger(spec, tmp_path / "cache")
    assert tagger is not None and tagger(_images(1)) == ["red"]


def test_prompter_joins_tags_and_text_and_encodes_per_image(tmp_path):
    assert join_prompt("red, cat", "") == "red, cat" and join_prompt("", "photo") == "photo"
    assert join_prompt("red", "photo") == "red, photo"
    small = default_params().osediff.small.model_copy(
        update={"vae_channels": [8, 8], "unet_channels": [16, 16], "cross_attention_dim": 16,
                "text_intermediate_size": 16})
    sd = build_small_sd(small, 0)
    fixed = Prompter(sd.text_encoder, sd.tokenizer, "a photo")
    torch.testing.assert_close(fixed(_images(3)), encode_prompts(sd.text_encoder, sd.tokenizer, ["a photo"]))
    tagger = Tagger(save_classifier_tagger(tmp_path / "vit", bias=[1.0, -3.0, 3.0, -5.0]), 0.68, 16)
    tagged = Prompter(sd.text_encoder, sd.tokenizer, "a photo", tagger)
    assert tagged.texts(_images(2)) == ["red, cat, a photo"] * 2
    embeds = tagged(_images(2))
    assert embeds.shape[0] == 2
    torch.testing.assert_close(embeds[:1], encode_prompts(sd.text_encoder, sd.tokenizer, ["red, cat, a photo"]))
