"""The params file as a whole: the root model, the project's only YAML reader, and per-stage views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sr.config.base import ParamsError, Section
from sr.config.data import DegradeParams, DownloadParams
from sr.config.evaluate import EvaluateParams, PackageParams
from sr.config.osediff import OsediffParams
from sr.config.training import DistillParams, TeacherParams, TrajectoriesParams


class Params(Section):
    seed: int = 0
    download: DownloadParams
    degrade: DegradeParams = DegradeParams()
    teacher: TeacherParams = TeacherParams()
    trajectories: TrajectoriesParams = TrajectoriesParams()
    osediff: OsediffParams = OsediffParams()
    distill: DistillParams = DistillParams()
    evaluate: EvaluateParams = EvaluateParams()
    package: PackageParams = PackageParams()


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
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = _location(error["loc"]) or "<root>"
        value = error.get("input")
        shown = "" if error["type"] == "missing" else f" = {value!r}"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ParamsError(f"{source}: {key}{shown}: {_allowed(error, Params)}{more}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read params file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_params(data, str(path))


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
