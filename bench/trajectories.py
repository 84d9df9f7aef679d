"""Samples/s of getting distillation targets two ways, side by side in one run: running the teacher's T-step
deterministic sampler (what `distill.targets: online` does in the loop) vs reading the cached trajectories.

Run on the pipeline's artifacts (after `dvc repro trajectories`):

    python -m bench.trajectories --samples 128 --batch 32
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--teacher", type=Path, default=Path("models/teacher"))
    ap.add_argument("--shards", type=Path, default=Path("data/shards"))
    ap.add_argument("--trajectories", type=Path, default=Path("data/trajectories"))
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args(argv)

    from sr.data.shards import iter_samples, shard_paths
    from sr.models.resshift import ResShiftModel
    from sr.seeds import noise, trajectory_noise_seed
    from sr.train.trajectories import trajectory_shards

    model = ResShiftModel.from_pretrained(args.teacher)
    train = list(itertools.islice(iter_samples(shard_paths(args.shards, "train")), args.samples))

    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(train), args.batch):
            batch = train[i : i + args.batch]
            lq = torch.stack([s["lq"] for s in batch])
            y = model.encode_lq(lq)
            eps = torch.stack([noise(trajectory_noise_seed(0, s["key"]), tuple(y.shape[1:])) for s in batch])
            model.diffusion.sample(model.denoiser, y, lq, eps, deterministic=True)
    sampled = len(train) / (time.perf_counter() - start)

    start = time.perf_counter()
    cached = 0
    for sample in itertools.islice(iter_samples(trajectory_shards(args.trajectories)), args.samples):
        cached += int(sample["x0"].numel() > 0)
    read = cached / (time.perf_counter() - start)

    print(f"{'targets':<34}{'samples/s':>12}")
    print(f"{f'teacher sampler ({model.diffusion.steps} steps)':<34}{sampled:>12.1f}")
    print(f"{'cached trajectories (read+decode)':<34}{read:>12.1f}")
    print(f"ratio cached/sampler: {read / sampled:.1f}x  (threads={torch.get_num_threads()}, batch={args.batch})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
