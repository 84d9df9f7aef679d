"""The teacher trajectory cache: the T-step deterministic sampler run once per training sample, stored as shards.

Each cached sample carries its training images (the HQ/LQ PNG bytes, copied), the ε seed (sr.seeds), y = E(bicubic↑lq)
and the teacher's x̂0 latent from x_T = y + κ√η_T·ε. Distillation then reads targets instead of running the teacher
inside its loop. Output shard k holds input samples [k·n, (k+1)·n), so a killed run resumes after its last complete
shard.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm import tqdm

from sr.config import TrajectoriesParams
from sr.data.shards import ShardWriter, decode_member, encode_json, encode_npy, iter_raw, shard_paths
from sr.models.resshift import ResShiftModel
from sr.seeds import noise, trajectory_noise_seed


def _batches(train_shards: list[Path], size: int, skip: int) -> Iterator[list[tuple[str, dict[str, bytes]]]]:
    batch: list[tuple[str, dict[str, bytes]]] = []
    index = 0
    for path in train_shards:
        for item in iter_raw(path):
            index += 1
            if index <= skip:
                continue
            batch.append(item)
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def count_samples(shards: list[Path]) -> int:
    return sum(1 for path in shards for _ in iter_raw(path))


@torch.no_grad()
def cache_trajectories(
    model: ResShiftModel, train_shards: list[Path], out_dir: Path, work_dir: Path, seed: int, p: TrajectoriesParams
) -> int:
    """Write `out_dir/traj-NNNNNN.tar`; partial shards live in `work_dir` until the whole cache is complete."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if p.mixed_precision == "fp16" and device.type != "cuda":
        raise ValueError("trajectories.mixed_precision fp16 needs a CUDA device; this machine has none (use bf16 or no)")
    model.to(device)
    work_dir.mkdir(parents=True, exist_ok=True)
    done_shards = sorted(work_dir.glob("traj-*.tar"))
    skip = len(done_shards) * p.shard_size
    if done_shards:
        print(f"trajectories: resuming after {len(done_shards)} complete shards ({skip} samples)", flush=True)
    total = count_samples(train_shards)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(p.mixed_precision)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    with ShardWriter(work_dir, "traj", p.shard_size, start_index=len(done_shards)) as writer, autocast:
        bar = tqdm(total=total, initial=skip, desc="trajectories", mininterval=2)
        for batch in _batches(train_shards, p.batch_size, skip):
            lq = torch.stack([decode_member("png", members["lq.png"]) for _, members in batch]).to(device)
            y = model.encode_lq(lq).float()
            seeds = [trajectory_noise_seed(seed, key) for key, _ in batch]
            eps = torch.stack([noise(s, tuple(y.shape[1:])) for s in seeds]).to(device)
            x0 = model.diffusion.sample(model.denoiser, y, lq, eps, deterministic=True)
            for i, (key, members) in enumerate(batch):
                writer.write(key, {
                    "hq.png": members["hq.png"],
                    "lq.png": members["lq.png"],
                    "json": encode_json({"key": key, "noise_seed": seeds[i], "steps": model.diffusion.steps}),
                    "y.npy": encode_npy(y[i].float()),
                    "x0.npy": encode_npy(x0[i].float()),
                })
            bar.update(len(batch))
        bar.close()

    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(work_dir, tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    shutil.rmtree(work_dir)
    return total


def trajectory_shards(traj_dir: Path) -> list[Path]:
    return shard_paths(traj_dir, "traj")
