"""Inference cost of a ResShift-family student, side by side in one run: megapixels per second at 128², 256² and
512² LQ input, tiled (128/32, tiles batched) and untiled, and peak RSS at 1024², for this architecture (windowed
attention on large grids, batched tiles) and for the one before it (global attention, one tile at a time).

    python bench/infer_memory.py                                  # the packaged student of `make repro`
    python bench/infer_memory.py --model models/student-colearn --sizes 128 256 512 --large 1024

Every measurement runs in a fresh process (so peak RSS is its own) whose address space is capped (`--memory-gb`): a
run that would need more fails instead of swapping the machine. Goals: MP/s at 512² within 1.5× of 128², untiled
512² under 8 GB, and the 1024² tiled run at least 4× faster than before.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, statistics, sys, time
limit = int(float(sys.argv[6]) * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from sr import threads
threads.configure()
import torch
from PIL import Image
from sr.infer import Upscaler
up = Upscaler.from_pretrained(sys.argv[1])
if sys.argv[2] == "before":  # global attention everywhere, one tile per network call
    for module in up.model.denoiser.modules():
        if hasattr(module, "window"):
            module.window = 10**9
batch = 1 if sys.argv[2] == "before" else 4
image = Image.open(sys.argv[3])
tile = int(sys.argv[4]) or None
times = []
for _ in range(int(sys.argv[5])):
    start = time.perf_counter()
    up.upscale(image, tile=tile, overlap=32, batch=batch)
    times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print("RESULT", json.dumps({"seconds": statistics.median(times), "peak_gb": peak}))
"""


def measure(model: str, arch: str, image: Path, tile: int, repeats: int, memory_gb: float, timeout: float) -> dict:
    cmd = [sys.executable, "-c", CHILD, model, arch, str(image), str(tile), str(repeats), str(memory_gb)]
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["?"])[-1][:80]
        return {"status": f"failed: {last}"}
    return {"status": "ok", **json.loads(lines[0][len("RESULT "):])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "dist" / "sr-onestep-0.1.0.tar.gz"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512], help="LQ sides for throughput")
    ap.add_argument("--large", type=int, default=1024, help="LQ side for peak RSS and the tiled wall time")
    ap.add_argument("--memory-gb", type=float, default=12.0, help="address-space cap of each measuring process")
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()
    rows: dict[tuple[str, int, str], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for side in [*args.sizes, args.large]:
            path = Path(tmp) / f"lq{side}.png"
            smooth = Image.fromarray(rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8))
            smooth.resize((side, side), Image.BICUBIC).save(path)
            for arch in ("before", "now"):
                for tile in (0, 128):
                    repeats = 3 if side <= 256 else 1
                    rows[arch, side, "tiled" if tile else "untiled"] = measure(
                        args.model, arch, path, tile, repeats, args.memory_gb, args.timeout)
                    r = rows[arch, side, "tiled" if tile else "untiled"]
                    mp = (side * 4) ** 2 / 1e6
                    shown = (f"{r['seconds']:8.2f} s {mp / r['seconds']:7.3f} MP/s  peak {r['peak_gb']:5.2f} GB"
                             if r["status"] == "ok" else r["status"])
                    print(f"{arch:>6} {side:>5}² {'tiled' if tile else 'untiled':>8}: {shown}", flush=True)
    now = {k[1:]: v for k, v in rows.items() if k[0] == "now"}
    before = {k[1:]: v for k, v in rows.items() if k[0] == "before"}

    def rate(entry: dict, side: int) -> float | None:
        return (side * 4) ** 2 / 1e6 / entry["seconds"] if entry["status"] == "ok" else None

    small, big = min(args.sizes), max(args.sizes)
    for mode in ("untiled", "tiled"):
        a, b = rate(now[small, mode], small), rate(now[big, mode], big)
        if a and b:
            print(f"now, {mode}: MP/s at {small}² / at {big}² = {a / b:.2f} (goal <= 1.5)")
    r = now[big, "untiled"]
    print(f"now, untiled {big}²: peak {r.get('peak_gb', float('nan')):.2f} GB (goal < 8 GB), {r['status']}")
    old, new = before[args.large, "tiled"], now[args.large, "tiled"]
    if old["status"] == new["status"] == "ok":
        print(f"{args.large}² tiled: before {old['seconds']:.1f} s, now {new['seconds']:.1f} s, "
              f"{old['seconds'] / new['seconds']:.2f}x faster (goal >= 4)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
