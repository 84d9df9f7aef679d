"""Where each stage runs: a small table of orchestration settings, kept out of params.yaml and dvc.yaml.

    git_url: https://git.example.com/me/sr-onestep.git   # workers clone the orchestrator's commit from here
    worker_wait_s: 600           # how long a stage waits for a live worker on its pool before failing
    worker_silence_s: 90         # a worker silent this long (and 3 of its heartbeat intervals) has died
    stages:
      teacher: {pool: gpu}
      distill: {pool: gpu, processes: 2}   # a foreach name stands for all its items; `distill@tadsr` for one
      baseline: {pool: gpu}
      osediff: {pool: gpu}
      download: {pool: cpu}

A stage with no entry (or an entry without a pool) runs in the flow's own process, as it always did. `processes` is
handed to the stage launch as SR_PROCESSES. Nothing here is a DVC dependency, so editing the table never makes a
stage stale.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class PlacementError(ValueError):
    """A placement file that cannot be used; the message is one line naming the file, the key and the value."""


# The git URL travels as a flow-run parameter, which Prefect stores and shows: keys belong to each machine's git.
CREDENTIALS = "a URL with credentials in it; give workers an SSH key or a git credential helper instead"


def has_credentials(url: str) -> bool:
    """`https://user:token@host/...` (an scp-style `git@host:path` names a user, not a secret)."""
    return "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]


class Place(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: str | None = Field(default=None, min_length=1)  # a Prefect work pool; None: the flow's own process
    processes: int = Field(default=1, ge=1)  # SR_PROCESSES for the stage launch


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    git_url: str | None = None  # None: the orchestrating checkout's `origin`
    worker_wait_s: float = Field(default=600.0, gt=0)
    # A worker on a busy machine sends its heartbeat late; only a long silence means it died (and its stage with it).
    worker_silence_s: float = Field(default=90.0, gt=0)
    poll_s: float = Field(default=2.0, gt=0)  # how often a waiting stage asks the server about its run
    stages: dict[str, Place] = {}

    @field_validator("git_url")
    @classmethod
    def no_credentials(cls, url: str | None) -> str | None:
        if url and has_credentials(url):
            raise ValueError(CREDENTIALS)
        return url

    def place(self, stage: str) -> Place | None:
        """The entry of `distill@sinsr` itself, else that of its foreach name `distill`."""
        return self.stages.get(stage) or self.stages.get(stage.split("@")[0])

    def pool(self, stage: str) -> str | None:
        place = self.place(stage)
        return place.pool if place else None

    def check_stages(self, source: str, stages: list[str]) -> None:
        """Every entry names a stage of dvc.yaml (or a foreach name): a typo must not silently run locally."""
        for name in self.stages:
            if not any(s == name or s.split("@")[0] == name for s in stages):
                raise PlacementError(f"{source}: stages.{name}: no such stage; dvc.yaml has: {', '.join(stages)}")


LOCAL = Placement()  # the embedded default: every stage in the flow's own process


def load_placement(path: str | Path | None) -> Placement:
    if path is None:
        return LOCAL
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PlacementError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PlacementError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
    try:
        return Placement.model_validate(raw or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        shown = "" if key == "git_url" else f" (got {error['input']!r})"  # never echo a secret
        raise PlacementError(f"{path}: {key}: {error['msg']}{shown}") from None
