"""Training curves for `dvc plots`: one CSV per run, rewritten atomically.

The columns are those of the first row logged (after `step`), so a trainer only says what it logs. The rows so far
travel in every checkpoint (`state()`): DVC removes a stage's outputs before it reruns it, so a resumed run cannot
read them back from the CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sr.storage import atomic_write_text


class Curves:
    def __init__(self, path: Path, saved: dict[str, Any] | None = None):
        """`saved`: `state()` as stored in the checkpoint that the run resumes from (its rows end at that step)."""
        self.path = path
        self.columns: list[str] = list(saved["columns"]) if saved else []
        self.rows: list[dict[str, float]] = [dict(row) for row in saved["rows"]] if saved else []

    def log(self, step: int, **values: float) -> None:
        if not self.columns:
            self.columns = ["step", *values]
        self.rows.append({"step": step, **{k: float(v) for k, v in values.items()}})

    def state(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows": [dict(row) for row in self.rows]}

    def flush(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (int(v) if k == "step" else f"{v:.6g}") for k, v in row.items()})
        atomic_write_text(self.path, buffer.getvalue())
