"""Seconds per training step of each recipe at paper scale, next to the published figures, the OSEDiff step, and
one-step inference latency next to teacher-15. For a lent GPU:

    python bench/gpu_step.py                  # on CUDA: paper scale; without: reduced size, and it says so
    python bench/gpu_step.py --size reduced   # the CPU rehearsal's architectures, to check the script itself

Paper scale: the 118.59 M UNetModelSwin with VQ-f4 (random weights: step time does not depend on them), 256² crops,
batch 8, bf16 autocast, the configs/resshift-v1-import.yaml distillation settings; OSEDiff on SD-2.1-base's
structure (scripts/stand_ins.py, full size, written once into --work) at 512², batch 4 per GPU as its reference
trains; inference at 128² -> 512². Reduced: the architectures of configs/rehearsal-*.yaml, 64² crops, batch 2, fp32.
Every trainer is the pipeline's own, fed synthetic shards (random pixels and latents of the right shapes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a file: the repository's packages (sr, scripts)

from sr.config import load_overlay, load_params, merge

# Published training speed on an A100, each at its paper's own batch size (SinSR: Wang et al. 2024, Table 6; Co-learning:
# its paper's efficiency table). TAD-SR gives none.
PUBLISHED = {"sinsr": 4.55, "tadsr": None, "colearn": 6.63}
RECIPES = ("sinsr", "tadsr", "colearn")
SIZES = {  # crop, distillation batch, OSEDiff crop, OSEDiff batch, inference LQ side, stand-in size
    "paper": {"crop": 256, "batch": 8, "osediff_crop": 512, "osediff_batch": 4, "lq": 128, "stand_in": "full"},
    "reduced": {"crop": 64, "batch": 2, "osediff_crop": 64, "osediff_batch": 2, "lq": 128, "stand_in": "tiny"},
}


def params(size: str, precision: str, steps: int, crop: int, batch: int, osediff_batch: int, sd_folder: Path):
    """params.yaml + the paper-scale overlays (or the rehearsal ones, reduced), as the bench runs them."""
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    names = ("resshift-v1-import", "osediff-sd21") if size == "paper" else ("rehearsal-resshift", "rehearsal-osediff")
    resshift, osediff = (load_overlay(REPO / f"configs/{n}.yaml") for n in names)
    train = {"steps": steps, "ckpt_every": 10**9, "log_every": 1, "num_workers": 0, "shuffle_buffer": 4 * batch,
             "warmup_steps": 0, "mixed_precision": precision}
    merged = merge(merge(base, {k: v for k, v in resshift.items() if k in ("teacher", "distill")}), {
        "download": {"min_size": crop},
        "degrade": {"hq_size": crop},
        "teacher": {"checkpoint": None, "autoencoder": {"checkpoint": None}, "train": {"mixed_precision": "no"}},
        "distill": {"image": {"refine_decoder": False}, "train": {**train, "batch_size": batch}},
        "osediff": {**osediff["osediff"], "checkpoint": str(sd_folder),
                    "train": {**train, "batch_size": osediff_batch, "steps": steps}},
    })
    merged["teacher"]["swin"] = {**merged["teacher"].get("swin", {}), "image_size": crop // 4}
    path = Path(tempfile.mkdtemp(prefix="gpu-step-")) / "params.yaml"
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return load_params(path)


def synthetic_shards(folder: Path, prefix: str, count: int, crop: int, teacher=None) -> list[Path]:
    """`count` samples of random HQ/LQ pixels; with `teacher`, as trajectory shards (its y, a random x0)."""
    from sr.data.shards import ShardWriter, encode_json, encode_npy, encode_png, shard_paths

    g = torch.Generator().manual_seed(0)
    with ShardWriter(folder, prefix, count) as writer:
        for i in range(count):
            hq, lq = torch.rand(3, crop, crop, generator=g), torch.rand(3, crop // 4, crop // 4, generator=g)
            members = {"hq.png": encode_png(hq), "lq.png": encode_png(lq), "json": encode_json({"key": f"s{i}"})}
            if teacher is not None:
                with torch.no_grad():
                    y = teacher.encode_lq(lq[None])[0]
                members.update({"y.npy": encode_npy(y), "x0.npy": encode_npy(torch.randn(y.shape, generator=g)),
                                "json": encode_json({"key": f"s{i}", "noise_seed": i})})
            writer.write(f"s{i}", members)
    return shard_paths(folder, prefix)


class StepClock:
    """Times the pipeline's trainers from outside: the gaps between their Run.end_step calls (the OSEDiff trainer has
    no per-step callback, and one clock for all keeps the figures comparable)."""

    def __init__(self) -> None:
        from sr.train.loop import Run

        self.stamps: list[float] = []
        original = Run.end_step

        def end_step(run, step, stats, **extra):
            self.stamps.append(time.perf_counter())
            return original(run, step, stats, **extra)

        Run.end_step = end_step

    def measure(self, train, warmup: int) -> float:
        """Mean seconds of the steps after the first `warmup` (the first one also builds the graph and allocators)."""
        self.stamps.clear()
        train()
        gaps = [b - a for a, b in zip(self.stamps, self.stamps[1:])][max(warmup - 1, 0):]
        return statistics.mean(gaps)


def latency(fn, repeats: int) -> float:
    def timed() -> float:
        began = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # kernels run asynchronously: wait for them before reading the clock
        return time.perf_counter() - began

    timed()  # warm-up: kernel selection, allocator
    return statistics.median(timed() for _ in range(repeats))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="paper" if torch.cuda.is_available() else "reduced")
    ap.add_argument("--steps", type=int, default=4, help="training steps per trainer; the first --warmup are not timed")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed inference runs (after one warm-up)")
    ap.add_argument("--work", type=Path, default=None, help="keeps the SD-2.1 stand-in between runs (default: temp)")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    s = SIZES[args.size]
    precision = "bf16" if cuda else "no"  # bf16 autocast on a CPU without bf16 units times the emulation, not the model
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-step-"))

    from scripts.stand_ins import write_sd21
    from sr.infer import upscale
    from sr.models.resshift import ResShiftModel
    from sr.train.distill import train_distill
    from sr.train.osediff import train_osediff

    sd_folder = work / f"sd21-{s['stand_in']}"
    if not sd_folder.is_dir():
        write_sd21(sd_folder, s["stand_in"], seed=0)
    p = params(args.size, precision, args.steps, s["crop"], s["batch"], s["osediff_batch"], sd_folder)
    device = "cuda" if cuda else "cpu"
    torch.manual_seed(0)
    teacher = ResShiftModel.build(p.teacher, p.degrade.scale, work / "cache").to(device)
    swin_m = sum(q.numel() for q in teacher.denoiser.parameters()) / 1e6
    where = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"gpu_step: {where}; size {args.size}"
          + ("" if args.size == "paper" else " (REDUCED: the rehearsal architectures, not paper scale; figures are not "
                                             "comparable with the published ones)"))
    print(f"  teacher/student: UNetModelSwin {swin_m:.2f} M + VQ-f4; crops {s['crop']}², batch {s['batch']}, "
          f"{precision if precision != 'no' else 'fp32'}, {args.steps - args.warmup} timed steps")

    clock = StepClock()
    count = s["batch"] * args.steps
    traj = synthetic_shards(work / "traj", "traj", count, s["crop"], teacher.cpu())
    rows = []
    for recipe in RECIPES:
        out = work / f"run-{recipe}"
        step_s = clock.measure(lambda out=out, recipe=recipe: train_distill(
            recipe, p.distill, teacher, p.seed, traj, out / "student", out / "work", out / "curves.csv"), args.warmup)
        rows.append((recipe, step_s, PUBLISHED[recipe]))
    print(f"{'recipe':<10}{'s/step here':>13}{'A100 published':>16}")
    for recipe, step_s, published in rows:
        print(f"{recipe:<10}{step_s:>13.3f}{(f'{published:.2f}' if published else '—'):>16}")

    train = synthetic_shards(work / "osediff-shards", "train", s["osediff_batch"] * args.steps, s["osediff_crop"])
    out = work / "run-osediff"
    step_s = clock.measure(lambda: train_osediff(p.osediff, p.seed, p.degrade.scale, train, out / "student",
                                                 out / "work", out / "curves.csv", REPO / ".torch"), args.warmup)
    print(f"osediff   {step_s:>13.3f}{'—':>16}   (SD-2.1-base {s['stand_in']}, {s['osediff_crop']}², "
          f"batch {s['osediff_batch']})")

    lq = torch.rand(1, 3, s["lq"], s["lq"], device=device)
    model = teacher.to(device).eval()
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=cuda):
        one, full = (latency(lambda k=k: upscale(model, lq, seed=0, steps=k), args.repeats)
                     for k in (1, p.teacher.diffusion.steps))
    side = s["lq"] * p.degrade.scale
    print(f"inference {s['lq']}² -> {side}²: one-step {one:.3f} s, teacher-{p.teacher.diffusion.steps} {full:.3f} s "
          f"({full / one:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
