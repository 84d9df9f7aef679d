"""Prompts for OSEDiff (docs/methods.md §4.4): fixed text, or tags that an image tagger reads off each image.

OSEDiff tags every HQ training crop with RAM and, at test time, the upsampled LQ image; the prompt is
"{tags}, {text}". RAM's own network is not in transformers, so the tagger plugs in as a transformers-format folder
(a local path or an s3:// prefix):
- an image classifier (`AutoModelForImageClassification` + its image processor): the labels whose probability
  reaches `threshold` (sigmoid for `problem_type: multi_label_classification`, softmax otherwise), best first;
- a CLIP model (`model_type: clip`, with its tokenizer and image processor) and a `tags.txt` vocabulary, one tag per
  line: zero-shot tagging, softmax over the vocabulary.
Either way at most `max_tags` tags, and the top tag always, so no image gets an empty prompt by accident.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from sr.config.base import Probability, Section
from sr.models.sd import encode_prompts
from sr.storage import materialize

VOCAB_FILE = "tags.txt"


class Tagger(torch.nn.Module):
    """Images in [-1, 1] (B, 3, H, W) -> one comma-separated tag string per image."""

    def __init__(self, folder: str | Path, threshold: float, max_tags: int) -> None:
        from transformers import AutoImageProcessor

        super().__init__()
        folder = Path(folder)
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"{folder}: not a transformers tagger folder (missing config.json)")
        self.folder, self.threshold, self.max_tags = folder, threshold, max_tags
        self.processor = AutoImageProcessor.from_pretrained(folder)
        if json.loads(config_path.read_text()).get("model_type") == "clip":
            self._load_clip(folder)
        else:
            self._load_classifier(folder)
        self.model.eval().requires_grad_(False)

    def _load_classifier(self, folder: Path) -> None:
        from transformers import AutoModelForImageClassification

        self.model = AutoModelForImageClassification.from_pretrained(folder)
        config = self.model.config
        self.tags = [config.id2label[i] for i in range(config.num_labels)]
        self.multi_label = config.problem_type == "multi_label_classification"
        self.tag_embeds = None

    def _load_clip(self, folder: Path) -> None:
        from transformers import AutoTokenizer, CLIPModel

        vocab = folder / VOCAB_FILE
        if not vocab.is_file():
            raise FileNotFoundError(f"{folder}: a CLIP tagger needs {VOCAB_FILE}, one tag per line")
        self.tags = [line.strip() for line in vocab.read_text().splitlines() if line.strip()]
        if not self.tags:
            raise ValueError(f"{vocab}: no tags")
        self.model = CLIPModel.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        self.multi_label = False
        with torch.no_grad():
            tokens = tokenizer(self.tags, padding=True, return_tensors="pt")
            embeds = self.model.get_text_features(**tokens)
            embeds = getattr(embeds, "pooler_output", embeds)
        self.tag_embeds = torch.nn.functional.normalize(embeds, dim=-1)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """(B, len(self.tags)) tag probabilities."""
        pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
        inputs = self.processor(images=list(np.asarray(pixels)), return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(next(self.model.parameters()).device)
        if self.tag_embeds is None:
            logits = self.model(pixel_values=pixel_values).logits
        else:
            embeds = self.model.get_image_features(pixel_values=pixel_values)
            embeds = torch.nn.functional.normalize(getattr(embeds, "pooler_output", embeds), dim=-1)
            logits = self.model.logit_scale.exp() * embeds @ self.tag_embeds.to(embeds.device).T
        return (logits.sigmoid() if self.multi_label else logits.softmax(-1)).float().cpu()

    def forward(self, images: torch.Tensor) -> list[str]:
        texts = []
        for probs in self.probabilities(images):
            order = probs.argsort(descending=True)[: self.max_tags].tolist()
            kept = [i for rank, i in enumerate(order) if rank == 0 or probs[i] >= self.threshold]
            texts.append(", ".join(self.tags[i] for i in kept))
        return texts


class TaggerSpec(Section):
    """A tagger folder (path or s3://) and its rules, as a trained student records them for inference."""

    path: str
    threshold: Probability
    max_tags: int


def load_tagger(spec: TaggerSpec | None, cache_dir: Path) -> Tagger | None:
    """The tagger `spec` names (materialised from s3:// into `cache_dir`), or None."""
    if spec is None:
        return None
    return Tagger(materialize(spec.path, cache_dir), spec.threshold, spec.max_tags)


def join_prompt(tags: str, text: str) -> str:
    """OSEDiff's "{tags}, {user prompt}" without dangling commas when either part is empty."""
    return ", ".join(part for part in (tags, text) if part)


class Prompter(torch.nn.Module):
    """Images in [-1, 1] -> CLIP prompt embeddings: (1, L, D) for a fixed text, (B, L, D) for tagged images."""

    def __init__(self, text_encoder, tokenizer, text: str, tagger: Tagger | None = None) -> None:
        super().__init__()
        self.text_encoder, self.tokenizer, self.text, self.tagger = text_encoder, tokenizer, text, tagger
        self.register_buffer("fixed", encode_prompts(text_encoder, tokenizer, [text]), persistent=False)

    def texts(self, images: torch.Tensor) -> list[str]:
        if self.tagger is None:
            return [self.text] * len(images)
        return [join_prompt(tags, self.text) for tags in self.tagger(images)]

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.tagger is None:
            return self.fixed
        return encode_prompts(self.text_encoder, self.tokenizer, self.texts(images)).to(self.fixed.device)
