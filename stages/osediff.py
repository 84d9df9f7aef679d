"""DVC stage `osediff`: LoRA-tune a Stable-Diffusion-format model into a one-step SR generator (OSEDiff)."""

from __future__ import annotations

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

    from sr.data.shards import iter_samples, shard_paths
    from sr.eval.metrics import Metrics
    from sr.eval.scoring import osediff_validator
    from sr.pretrained import default_torch_home
    from sr.storage import atomic_write_json
    from sr.train.osediff import train_osediff

    # small convolutions on a shared 2-core CPU: 2 threads ran a VAE step 16x slower than 1 when other processes
    # competed (measured 8 s vs 0.5 s); a GPU run does not care
    torch.set_num_threads(1 if (os.cpu_count() or 1) <= 2 else min(4, os.cpu_count() or 1))
    torch_home, scale = default_torch_home(), p.degrade.scale
    val = list(iter_samples(shard_paths(args.shards, "val")))
    validate, results = osediff_validator(val, scale, Metrics(torch_home))
    train_osediff(p.osediff, p.seed, scale, shard_paths(args.shards, "train"), args.out, args.work, args.curves,
                  torch_home, validate)
    report = {"steps": p.osediff.train.steps, "val_samples": len(val)}
    for name, m in results.items():
        report[f"psnr_y_{name}"], report[f"lpips_{name}"] = m["psnr_y"], m["lpips"]
    atomic_write_json(args.metrics, report)
    print(f"osediff: val PSNR(Y) {report['psnr_y_osediff']:.2f} dB (init {report['psnr_y_init']:.2f}, bicubic "
          f"{report['psnr_y_bicubic']:.2f}); LPIPS {report['lpips_osediff']:.4f} (init {report['lpips_init']:.4f}, "
          f"bicubic {report['lpips_bicubic']:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, ValueError))
