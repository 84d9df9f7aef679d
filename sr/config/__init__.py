"""Typed params: one pydantic model per params.yaml section, and the project's only YAML reader.

Every model forbids unknown keys, so a typo fails at load with one line that names the key. Discrete choices are
`Literal`s. Paths to files are not params (they are stage arguments in dvc.yaml); data *sources* and checkpoint
URIs are, because they are what an experiment is about.
"""

from sr.config.base import ParamsError, Probability, Range, Section
from sr.config.data import (
    BlurParams,
    BundledSource,
    DegradationStage,
    DegradeParams,
    DirSource,
    DownloadParams,
    KernelKind,
    S3Source,
    Source,
    UrlSource,
)
from sr.config.evaluate import EvalDataset, EvaluateParams, PackageParams
from sr.config.file import Params, ParamsView, load_overlay, load_params, merge, open_params, parse_params
from sr.config.osediff import OSEDIFF_NEG_PROMPT, LoraParams, OsediffParams, PromptParams, SmallSDParams
from sr.config.training import (
    AutoencoderKind,
    AutoencoderParams,
    ColearnParams,
    DenoiserArch,
    DiffusionParams,
    DistillParams,
    DistillRecipe,
    EmaTrainParams,
    MixedPrecision,
    SinsrParams,
    SwinUNetParams,
    TadsrParams,
    TeacherParams,
    TrainParams,
    TrajectoriesParams,
    UNetParams,
    VQParams,
)

__all__ = [
    "OSEDIFF_NEG_PROMPT",
    "AutoencoderKind",
    "AutoencoderParams",
    "BlurParams",
    "BundledSource",
    "ColearnParams",
    "DegradationStage",
    "DegradeParams",
    "DenoiserArch",
    "DiffusionParams",
    "DirSource",
    "DistillParams",
    "DistillRecipe",
    "DownloadParams",
    "EmaTrainParams",
    "EvalDataset",
    "EvaluateParams",
    "KernelKind",
    "LoraParams",
    "MixedPrecision",
    "OsediffParams",
    "PackageParams",
    "Params",
    "ParamsError",
    "ParamsView",
    "Probability",
    "PromptParams",
    "Range",
    "S3Source",
    "Section",
    "SinsrParams",
    "SmallSDParams",
    "Source",
    "SwinUNetParams",
    "TadsrParams",
    "TeacherParams",
    "TrainParams",
    "TrajectoriesParams",
    "UNetParams",
    "UrlSource",
    "VQParams",
    "load_overlay",
    "load_params",
    "merge",
    "open_params",
    "parse_params",
]  # fmt: skip
