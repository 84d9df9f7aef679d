"""Training curves for `dvc plots`: one CSV per run, rewritten atomically, trimmed back on resume.

The columns are those of the first row logged (after `step`), so a trainer only says what it logs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sr.storage import atomic_write_text


class Curves:
    def __init__(self, path: Path, resume_step: int = 0):
        self.path = path
        self.columns: list[str] = []
        self.rows: list[dict[str, float]] = []
        if resume_step and path.exists():
            # Rows past the checkpoint were logged by the killed run; the resumed run logs them again.
            with path.open() as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = [{k: float(v) for k, v in r.items()} for r in reader]
            self.rows = [r for r in self.rows if r["step"] <= resume_step]

    def log(self, step: int, **values: float) -> None:
        if not self.columns:
            self.columns = ["step", *values]
        self.rows.append({"step": step, **{k: float(v) for k, v in values.items()}})

    def flush(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (int(v) if k == "step" else f"{v:.6g}") for k, v in row.items()})
        atomic_write_text(self.path, buffer.getvalue())
