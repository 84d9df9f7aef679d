"""One loader for every model folder this project writes, dispatching on config.json's `model_type`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sr.models.resshift import ResShiftModel, read_config
from sr.models.srvgg import SRVGGModel  # basicsr (and torchvision) are imported only when one is built

if TYPE_CHECKING:
    from sr.models.osediff import OSEDiffStudent

MODEL_TYPES = ("resshift", "osediff", "srvgg")


def model_type(folder: Path) -> str:
    kind = read_config(folder).get("model_type")
    if kind not in MODEL_TYPES:
        raise ValueError(f"{folder}/config.json: model_type {kind!r} is not one of {', '.join(MODEL_TYPES)}")
    return kind


def load_model(folder: str | Path, cache_dir: Path | None = None) -> ResShiftModel | OSEDiffStudent | SRVGGModel:
    """The model a folder holds, in eval mode, frozen. `cache_dir`: where an OSEDiff base model named by URI lands."""
    folder = Path(folder)
    match model_type(folder):
        case "resshift":
            return ResShiftModel.from_pretrained(folder)
        case "osediff":
            from sr.models.osediff import OSEDiffStudent  # diffusers, transformers, peft: only for OSEDiff folders

            return OSEDiffStudent.from_pretrained(folder, cache_dir)
        case "srvgg":
            return SRVGGModel.from_pretrained(folder)
