"""What every params section shares: unknown keys fail, values are frozen, one-line errors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class ParamsError(ValueError):
    """A params file that does not validate; the message is one line naming file, key, value and what is allowed."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Range = tuple[float, float]
ColorFix = Literal["none", "adain", "wavelet"]  # sr/models/colorfix.py


def check_range(value: Range) -> Range:
    if value[0] > value[1]:
        raise ValueError(f"range low {value[0]} > high {value[1]}")
    return value
