"""DVC stage `osediff`: LoRA-tune a Stable-Diffusion-format model into a one-step SR generator (OSEDiff)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sr.config import open_params
from stages._cli import parser, run

PARAMS = ["seed", "degrade.scale", "osediff"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--shards", type=Path, default=Path("data/shards"))
    ap.add_argument("--out", type=Path, default=Path("models/student-osediff"))
    ap.add_argument("--work", type=Path, default=Path("checkpoints/osediff"), help="checkpoints, base model cache")
    ap.add_argument("--metrics", type=Path, default=Path("metrics/train-osediff.json"))
    ap.add_argument("--curves", type=Path, default=Path("plots/osediff.csv"))
    args = ap.parse_args(argv)
    p = open_params(args.params, PARAMS)

    import torch

    from sr.data.shards import shard_paths
    from sr.train.osediff import train_osediff

    # small convolutions on a shared 2-core CPU: 2 threads ran a VAE step 16x slower than 1 when other processes
    # competed (measured 8 s vs 0.5 s); a GPU run does not care
    torch.set_num_threads(1 if (os.cpu_count() or 1) <= 2 else min(4, os.cpu_count() or 1))
    train, val = shard_paths(args.shards, "train"), shard_paths(args.shards, "val")
    train_osediff(p.osediff, p.seed, p.degrade.scale, train, val, args.out, args.work, args.curves, args.metrics)
    m = json.loads(args.metrics.read_text())
    print(f"osediff: val PSNR(Y) {m['psnr_y_osediff']:.2f} dB (init {m['psnr_y_init']:.2f}, bicubic "
          f"{m['psnr_y_bicubic']:.2f}); LPIPS {m['lpips_osediff']:.4f} (init {m['lpips_init']:.4f}, bicubic "
          f"{m['lpips_bicubic']:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError))
