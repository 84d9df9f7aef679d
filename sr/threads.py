"""How many threads every process of the project uses, decided in one place.

The count is `SR_THREADS` if set, else `OMP_NUM_THREADS` if set, else half the machine's cores (at least one), so
two jobs sharing a machine never ask for more threads than it has. OpenMP threads also wait passively
(`OMP_WAIT_POLICY=PASSIVE` unless set): with busy-waiting threads, two jobs on a 2-core machine each ran ~30× slower
than alone, while passive threads give the core to the other job.

Every stage (through stages/_cli.py), every command-line tool (sr-upscale, sr-export) and every benchmark calls
`configure()` first thing, before torch is imported, because OpenMP reads its environment when torch loads it. If
torch is already imported, `configure()` still sets torch's intra-op thread count.
"""

from __future__ import annotations

import os
import sys

ENV = "SR_THREADS"


def thread_count() -> int:
    """SR_THREADS, else OMP_NUM_THREADS, else half the cores; always at least 1."""
    for name in (ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                raise ValueError(f"{name}={value!r}: expected a whole number of threads") from None
    return max(1, (os.cpu_count() or 2) // 2)


def configure() -> int:
    """Apply the thread count to OpenMP, MKL and (when loaded) torch; returns it."""
    count = thread_count()
    os.environ["OMP_NUM_THREADS"] = str(count)
    os.environ.setdefault("MKL_NUM_THREADS", str(count))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
    return count
