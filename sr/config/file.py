"""The params file as a whole: the root model, cross-section checks, overlays, the project's only YAML reader, and
per-stage views.

params.yaml holds every knob; the models carry no defaults for the keys it sets. A paper-scale or rehearsal setup is
an overlay (configs/*.yaml): only the keys that change, marked by a top-level `overlay_of: params.yaml`.
`python -m sr.config apply configs/X.yaml` merges it onto params.yaml (comments kept) and validates the result;
DVC then sees ordinary per-key params changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sr.config.base import ParamsError, Section
from sr.config.data import DegradeParams, DownloadParams
from sr.config.evaluate import EvaluateParams, PackageParams
from sr.config.osediff import OsediffParams
from sr.config.training import BaselineParams, DistillParams, TeacherParams, TrajectoriesParams

OVERLAY_KEY = "overlay_of"


class Params(Section):
    seed: int
    download: DownloadParams
    degrade: DegradeParams
    teacher: TeacherParams
    trajectories: TrajectoriesParams
    osediff: OsediffParams
    distill: DistillParams
    baseline: BaselineParams
    evaluate: EvaluateParams
    package: PackageParams


def autoencoder_factor(p: Params) -> int | None:
    """Pixels per latent pixel of the teacher's first stage; None when only its weights know (kl)."""
    match p.teacher.autoencoder.kind:
        case "pixel_unshuffle":
            return p.degrade.scale
        case "vq_f4":
            return 2 ** (len(p.teacher.autoencoder.vq.ch_mult) - 1)
        case "kl":
            return None


def invariants(p: Params) -> list[str]:
    """Every cross-section rule the params break, each as `key: why` (one line)."""
    broken = []
    hq, factor = p.degrade.hq_size, autoencoder_factor(p)
    if p.download.min_size < hq:
        broken.append(f"download.min_size = {p.download.min_size}: smaller than the crops it must hold "
                      f"(degrade.hq_size = {hq})")
    if factor is not None and hq % factor:
        broken.append(f"degrade.hq_size = {hq}: not a multiple of the autoencoder factor {factor}")
    if p.teacher.arch == "resshift_swin" and factor is not None and p.teacher.swin.image_size * factor != hq:
        broken.append(f"teacher.swin.image_size = {p.teacher.swin.image_size}: × autoencoder factor {factor} must "
                      f"equal degrade.hq_size = {hq}")
    if p.teacher.arch == "unet" and factor is not None:
        multiple = 2 ** (len(p.teacher.unet.channel_mult) - 1)
        if (hq // factor) % multiple:
            broken.append(f"teacher.unet.channel_mult = {p.teacher.unet.channel_mult}: the {hq // factor}-pixel "
                          f"latent of degrade.hq_size = {hq} is not a multiple of {multiple}")
    too_many = [k for k in p.evaluate.teacher_steps if k > p.teacher.diffusion.steps]
    if too_many:
        broken.append(f"evaluate.teacher_steps = {p.evaluate.teacher_steps}: {too_many[0]} exceeds the teacher's "
                      f"teacher.diffusion.steps = {p.teacher.diffusion.steps}")
    untrained = [s for s in p.package.students or [] if s != "osediff" and s not in p.distill.recipes]
    if untrained:
        broken.append(f"package.students = {p.package.students}: {untrained[0]} is not in distill.recipes = "
                      f"{p.distill.recipes}")
    vae = 2 ** (len(p.osediff.small.vae_channels) - 1)
    if p.osediff.checkpoint is None and hq % vae:
        broken.append(f"osediff.small.vae_channels: a x{vae} VAE does not divide degrade.hq_size = {hq}")
    return broken


def _allowed(error: dict[str, Any], model: type[BaseModel]) -> str:
    """What the schema allows at the failing location, for the one-line message."""
    kind = error["type"]
    if kind == "extra_forbidden":
        parent: Any = model
        for part in error["loc"][:-1]:
            fields = getattr(parent, "model_fields", None)
            if fields is None or not isinstance(part, str) or part not in fields:
                parent = None
                break
            annotation = fields[part].annotation
            parent = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
            if parent is None:
                break
        if parent is not None:
            return f"unknown key; allowed: {', '.join(parent.model_fields)}"
        return "unknown key"
    return error["msg"]


def _location(loc: tuple[Any, ...]) -> str:
    """`('download', 'sources', 0, 'url', 'sha256')` -> `download.sources[0].sha256`."""
    text = ""
    after_index = False
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            after_index = True
            continue
        if after_index and part in {"bundled", "dir", "url", "s3"}:
            after_index = False  # the discriminated-union tag pydantic inserts; the user never wrote it
            continue
        text += f".{part}" if text else str(part)
        after_index = False
    return text


def parse_params(data: Any, source: str = "params.yaml") -> Params:
    """Validate a params mapping; raise ParamsError with one line: file, key, bad value, what is allowed."""
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    if OVERLAY_KEY in data:
        raise ParamsError(f"{source}: is an overlay of {data[OVERLAY_KEY]}, not a params file; apply it with "
                          f"`python -m sr.config apply {source}`")
    try:
        params = Params.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # a typo shows as an unknown key *and* a missing one: the unknown key is the one to name
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        key = _location(error["loc"]) or "<root>"
        value = error.get("input")
        shown = "" if error["type"] == "missing" else f" = {value!r}"
        # ... and the key the typo left missing beside it is the same mistake, not one more
        others = [e for e in errors if e is not error
                  and not (e["type"] == "missing" and e["loc"][:-1] == error["loc"][:-1])]
        more = f" (+{len(others)} more)" if others else ""
        raise ParamsError(f"{source}: {key}{shown}: {_allowed(error, Params)}{more}") from None
    broken = invariants(params)
    if broken:
        more = f" (+{len(broken) - 1} more)" if len(broken) > 1 else ""
        raise ParamsError(f"{source}: {broken[0]}{more}")
    return params


def read_yaml(path: str | Path) -> Any:
    """A YAML file's data; unreadable or invalid YAML raises ParamsError naming the file (and line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read params file ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    return parse_params(read_yaml(path), str(path))


def merge(base: dict, overlay: dict) -> dict:
    """`overlay` onto `base`, recursively for mappings; any other value (lists included) replaces the base's."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def load_overlay(path: str | Path) -> dict:
    """An overlay's keys (without its `overlay_of` marker); a file without the marker is refused."""
    data = read_yaml(path)
    if not isinstance(data, dict) or OVERLAY_KEY not in data:
        raise ParamsError(f"{path}: not an overlay (it needs a top-level `{OVERLAY_KEY}: params.yaml`)")
    return {k: v for k, v in data.items() if k != OVERLAY_KEY}


class ParamsView:
    """Read access to just the keys a stage declares (its `params:` list in dvc.yaml), recording which it read.

    A stage that reads an undeclared key fails at once, so dvc.yaml can never under-declare; the recorded reads let
    a test check that it does not over-declare either.
    """

    def __init__(self, params: BaseModel, keys: list[str], prefix: str = "", read: set[str] | None = None):
        self._params, self._keys, self._prefix = params, keys, prefix
        self.read: set[str] = set() if read is None else read

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        full = self._prefix + name
        if full in self._keys:
            self.read.add(full)
            return getattr(self._params, name)
        if any(key.startswith(full + ".") for key in self._keys):
            return ParamsView(getattr(self._params, name), self._keys, full + ".", self.read)
        raise AttributeError(f"param '{full}' is not declared for this stage (declared: {', '.join(self._keys)})")


def open_params(path: str | Path, keys: list[str]) -> ParamsView:
    """Load and validate the whole file (a typo anywhere fails), then expose only `keys`."""
    return ParamsView(load_params(path), list(keys))
