"""Peak RSS of `sr-upscale` on a large LQ image, tiled vs untiled, each in a fresh process.

    python bench/infer_memory.py                       # tiny random-init model, 1024x1024 LQ
    python bench/infer_memory.py --model models/student-sinsr --size 1024 --tile 128 --overlap 32

Goal: tiled peak RSS < 4 GB at 1024x1024. The untiled run can need far more (a full-size UNet pass; attention over
all latent positions): it gets `--untiled-timeout` seconds and is reported as such if it fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CHILD = (
    "import resource, sys; from sr.infer import main; rc = main(sys.argv[1:]); "
    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
)


def tiny_model(folder: Path) -> Path:
    """A random-init model at the embedded default's teacher architecture (params.yaml)."""
    import torch

    from sr.config import load_params
    from sr.models.resshift import ResShiftModel

    torch.manual_seed(0)
    p = load_params(REPO / "params.yaml")
    ResShiftModel.build(p.teacher, p.degrade.scale, folder, inference_steps=1).save_pretrained(folder / "model")
    return folder / "model"


def measure(image: Path, model: Path, tile: int, overlap: int, timeout: float) -> tuple[float | None, float, str]:
    out = image.with_name(f"out-{tile}.png")
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(image), str(out), "--model", str(model), "--tile",
                               str(tile), "--overlap", str(overlap)], check=False, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    peak = [line for line in proc.stdout.splitlines() if line.startswith("PEAK_RSS_KB")]
    if proc.returncode != 0 or not peak:
        return None, seconds, f"failed (rc {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"
    return int(peak[0].split()[1]) / 1024**2, seconds, "ok"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="a model folder or package (default: tiny random model)")
    ap.add_argument("--size", type=int, default=1024, help="LQ side in pixels")
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--untiled-timeout", type=float, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        model = args.model or tiny_model(tmp_dir)
        image = tmp_dir / "lq.png"
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)).save(image)
        tiled = measure(image, model, args.tile, args.overlap, 3600)
        untiled = measure(image, model, 0, 0, args.untiled_timeout)
    for label, (gb, seconds, status) in (("tiled", tiled), ("untiled", untiled)):
        shown = f"{gb:.2f} GB" if gb is not None else "n/a"
        print(f"{label:>8}: peak RSS {shown:>9}  {seconds:7.1f} s  {status}")
    if tiled[0] is not None and untiled[0] is not None:
        print(f"untiled / tiled peak RSS: {untiled[0] / tiled[0]:.2f}x")
    print(f"goal tiled < 4 GB at {args.size}x{args.size}: {'met' if tiled[0] is not None and tiled[0] < 4 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
