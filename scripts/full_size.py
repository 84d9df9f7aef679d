"""The paper-scale ResShift path once at full size on CPU (not in CI: tens of minutes and ~10 GB of RAM).

Writes the real-size stand-ins (scripts/stand_ins.py: UNetModelSwin 118.59 M, VQ-f4), imports them through the
official-checkpoint path, makes 4 training samples of 256x256 from bundled photos (the download and degrade stages),
caches their teacher trajectories, runs 2 training steps of each recipe, and upscales one 256x256 image with the
first recipe's student. Prints each phase's wall time and peak RSS, and each training step's seconds.

    OMP_NUM_THREADS=2 python scripts/full_size.py [--work /tmp/full-size] [--batch 2] [--steps 2]

A second run with the same --work reuses its stand-ins and trajectories (`--recipes colearn` to time one recipe).

The params are configs/resshift-v1-import.yaml over params.yaml, with the data made tiny and mixed precision off
(fp16 needs CUDA); nothing else is reduced.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a file: the repository's packages (sr, stages, scripts)

from scripts.stand_ins import UNET_FILE, VQ_FILE, write_resshift
from sr.config import SwinUNetParams, VQParams, load_overlay, load_params, merge

RECIPES = ("sinsr", "tadsr", "colearn")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


@contextmanager
def phase(name: str, rows: list[tuple[str, float, float]]) -> Iterator[None]:
    """Time the block and sample this process's RSS every 20 ms: the block's own peak, which getrusage's
    whole-process high-water mark cannot give once an earlier phase went higher."""
    peak, done = [rss_mb()], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - began
        done.set()
        sampler.join()
        rows.append((name, seconds, max(peak[0], rss_mb())))
        print(f"full_size: {name}: {seconds:.1f} s, peak RSS {rows[-1][2]:.0f} MB", flush=True)


def write_params(root: Path, batch: int, steps: int) -> Path:
    overlay = merge(load_overlay(REPO / "configs/resshift-v1-import.yaml"), {
        # 2 train photos x 2 crops = the 4 samples; 1 val photo (the stages need one)
        "download": {"sources": [{"kind": "bundled", "names": ["rocket", "coffee", "china"]}], "min_val_images": 1,
                     "val_fraction": 0.2},
        "degrade": {"train_crops_per_image": 2, "val_crops_per_image": 1, "shard_size": 4},
        "teacher": {"checkpoint": str(root / "weights" / UNET_FILE), "train": {"mixed_precision": "no"},
                    "autoencoder": {"checkpoint": str(root / "weights" / VQ_FILE)}},
        "trajectories": {"batch_size": 4, "shard_size": 4, "mixed_precision": "no"},
        "distill": {"image": {"refine_decoder": False},  # the VQ-f4 decodes; the refine decoder is pixel_unshuffle's
                    "train": {"steps": steps, "batch_size": batch, "ckpt_every": 2, "log_every": 1, "num_workers": 0,
                              "shuffle_buffer": 4, "warmup_steps": 0}},
    })
    params = merge(yaml.safe_load((REPO / "params.yaml").read_text()), overlay)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(path)  # validated before any phase runs
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="where everything is written (default: a temp folder)")
    ap.add_argument("--batch", type=int, default=2, help="distillation batch (the 4 cached samples are the data)")
    ap.add_argument("--steps", type=int, default=2, help="training steps of each recipe")
    ap.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    args = ap.parse_args(argv)
    root = args.work or Path(tempfile.mkdtemp(prefix="full-size-"))
    root.mkdir(parents=True, exist_ok=True)

    import torch

    from sr import cli
    from sr.data.shards import shard_paths
    from sr.models.resshift import ResShiftModel
    from sr.train.distill import train_distill
    from sr.train.trajectories import cache_trajectories, trajectory_shards
    from stages import degrade, download

    params_path = write_params(root, args.batch, args.steps)
    p = load_params(params_path)
    print(f"full_size: {root}, torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    rows: list[tuple[str, float, float]] = []
    if not (root / "weights" / VQ_FILE).is_file():  # written last
        with phase("write stand-ins (UNetModelSwin + VQ-f4 .pth)", rows):
            write_resshift(root / "weights", SwinUNetParams(), VQParams(), seed=0)
    with phase("import the official-format teacher", rows):
        teacher = ResShiftModel.from_official(p.teacher, p.degrade.scale, root / "cache")
        teacher.save_pretrained(root / "models/teacher")
    print(f"full_size: teacher {sum(q.numel() for q in teacher.denoiser.parameters()) / 1e6:.2f} M (Swin) + "
          f"{sum(q.numel() for q in teacher.autoencoder.parameters()) / 1e6:.2f} M (VQ-f4) parameters", flush=True)
    if not (root / "data/trajectories").is_dir():  # cache_trajectories moves it into place when complete
        with phase("download + degrade (4 train samples of 256x256)", rows):
            download.main(["--params", str(params_path), "--out", str(root / "data/raw")])
            degrade.main(["--params", str(params_path), "--raw", str(root / "data/raw"), "--out",
                          str(root / "data/shards")])
        with phase("cache trajectories (4 samples, 15 steps)", rows):
            count = cache_trajectories(teacher, shard_paths(root / "data/shards", "train"),
                                       root / "data/trajectories", root / "work/trajectories", p.seed, p.trajectories)
        assert count == 4, f"{count} samples cached, expected 4"
    steps: dict[str, list[float]] = {}
    for recipe in args.recipes:
        times = steps.setdefault(recipe, [])
        with phase(f"distill {recipe}: {p.distill.train.steps} steps at batch {args.batch}", rows):
            train_distill(recipe, p.distill, teacher, p.seed, trajectory_shards(root / "data/trajectories"),
                          root / f"models/student-{recipe}", root / "work/distill", root / f"plots/{recipe}.csv",
                          on_step=lambda step, stats, times=times: times.append(stats["step_s"]))
        print(f"full_size: distill {recipe}: step seconds {', '.join(f'{s:.1f}' for s in times)}", flush=True)
    photo = root / "photo.png"
    Image.open(min((root / "data/raw/images").glob("*.png"))).convert("RGB").crop((0, 0, 256, 256)).save(photo)
    student = root / f"models/student-{args.recipes[0]}"
    with phase(f"sr-upscale one 256x256 image ({student.name}, 1 step, untiled)", rows):
        cli.main([str(photo), str(root / "photo_x4.png"), "--model", str(student), "--tile", "0", "--overwrite"])
    assert Image.open(root / "photo_x4.png").size == (1024, 1024)

    print("\nfull_size: summary (CPU, fp32)")
    print(f"{'phase':<66}{'seconds':>9}{'peak RSS MB':>13}")
    for name, seconds, peak in rows:
        print(f"{name:<66}{seconds:>9.1f}{peak:>13.0f}")
    for recipe, times in steps.items():
        print(f"{recipe} s/step: {' '.join(f'{s:.1f}' for s in times)}")
    print(f"process peak RSS (getrusage): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
