"""Latency and size of a method, measured the same way for all of them in one process on one machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

import torch


def count_params(modules: Iterable[torch.nn.Module]) -> int:
    """Parameters of all the modules given, a tensor shared between them counted once (buffers are not counted)."""
    seen: set[int] = set()
    total = 0
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def median_latency(fn: Callable[[], object], warmup: int, repeats: int,
                   device: torch.device | str = "cpu") -> dict[str, float]:
    """Run `fn` `warmup` times untimed, then `repeats` times timed; seconds per call (median, min, max)."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": repeats}


@torch.no_grad()
def interleaved_latencies(fns: dict[str, Callable[[], object]], warmup: int, repeats: int,
                          device: torch.device | str = "cpu") -> dict[str, dict[str, float]]:
    """Like `median_latency` for several functions, timed round-robin (one call of each per round), so a load
    change on a shared machine hits every method alike instead of whichever happened to run then."""
    device = torch.device(device)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "repeats": repeats}
            for name, t in times.items()}
