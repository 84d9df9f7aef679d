"""The ResShift teacher trained from scratch (docs/methods.md §1.6): x0 MSE, AdamW + warmup, EMA, resumable.

Importing official weights instead is `ResShiftModel.from_official` (sr/models/resshift.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from sr.config import TeacherParams
from sr.data.shards import iter_samples
from sr.models.autoencoder import Autoencoder
from sr.models.resshift import ResShiftModel
from sr.models.unet import UNet
from sr.seeds import sample_seed
from sr.train.checkpoint import fingerprint, seed_everything
from sr.train.ema import ema_copy, ema_update
from sr.train.loop import Run, warmup_schedule


def rotate_pairs(hq: torch.Tensor, lq: torch.Tensor, turns: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each (hq, lq) pair of a batch by its own multiple of 90° (`turns`, one per pair)."""
    hq = torch.stack([x.rot90(k, (-2, -1)) for x, k in zip(hq, turns)])
    lq = torch.stack([x.rot90(k, (-2, -1)) for x, k in zip(lq, turns)])
    return hq, lq


@torch.no_grad()
def fit_lq_skip(denoiser: UNet, autoencoder: Autoencoder, shards: list[Path], samples: int = 1024) -> None:
    """Least-squares fit of the UNet's linear lq -> x0 path on the first `samples` training samples."""
    conv = denoiser.lq_skip
    size = conv.kernel_size[0]
    rows, targets = [], []
    for count, sample in enumerate(iter_samples(shards)):
        if count == samples:
            break
        x0 = autoencoder.encode(sample["hq"][None])
        lq = F.interpolate(sample["lq"][None], size=x0.shape[-2:], mode="area") if sample["lq"].shape[-1] > \
            x0.shape[-1] else sample["lq"][None]
        patches = F.unfold(lq, size, padding=size // 2)[0].T  # (h*w, 3*size*size)
        rows.append(torch.cat([patches, torch.ones(len(patches), 1)], dim=1))
        targets.append(x0[0].flatten(1).T)
    a, b = torch.cat(rows).double(), torch.cat(targets).double()
    solution = torch.linalg.lstsq(a, b).solution.float()  # (3*size*size + 1, C)
    conv.weight.copy_(solution[:-1].T.reshape(conv.weight.shape))
    conv.bias.copy_(solution[-1])


def train_teacher(
    p: TeacherParams, seed: int, scale: int, train_shards: list[Path], out_dir: Path, work_dir: Path,
    curves_path: Path,
) -> ResShiftModel:
    """Train from scratch and save the EMA teacher to `out_dir`; resumes from `work_dir/<fingerprint>/`."""
    t = p.train
    run = Run("teacher", t, work_dir / fingerprint(p.model_dump_json(), seed, scale, *train_shards), curves_path)
    seed_everything(sample_seed(seed, "teacher-init"))  # weight init draws from the global RNG
    model = ResShiftModel.build(p, scale, work_dir / "cache")
    denoiser, autoencoder, diffusion = model.denoiser, model.autoencoder, model.diffusion
    if isinstance(denoiser, UNet):
        fit_lq_skip(denoiser, autoencoder, train_shards)  # on the CPU, before anything moves to the device
    autoencoder.to(run.device)
    ema = ema_copy(denoiser)
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    scheduler = warmup_schedule(optimizer, t.warmup_steps)
    draws = run.draws(sample_seed(seed, "teacher", 0))
    run.restore({"model": denoiser, "ema": ema, "optimizer": optimizer, "scheduler": scheduler}, draws.generator)
    denoiser, optimizer = run.prepare(denoiser, optimizer)
    ema.to(run.device)

    batches = run.batches(train_shards, seed)
    for step in run.steps():
        denoiser.train()
        total = 0.0
        for micro in range(t.grad_accum):
            batch = next(batches)
            hq, lq = batch["hq"], batch["lq"]
            if p.rot90:
                hq, lq = rotate_pairs(hq, lq, draws.randint(0, 4, len(hq)).tolist())
            hq, lq = hq.to(run.device), lq.to(run.device)
            with torch.no_grad():
                x0, y = autoencoder.encode(hq), model.encode_lq(lq)
            steps = draws.randint(0, diffusion.steps, len(hq)).to(run.device)
            noise = draws.randn(x0.shape).to(run.device)
            with run.micro(micro, [denoiser]):
                loss = diffusion.training_loss(denoiser, x0, y, lq, steps, noise).mean() / t.grad_accum
                run.backward(loss)
            total += loss.item()
        run.update(optimizer, scheduler, denoiser.parameters())
        ema_update(ema, run.unwrap(denoiser), t.ema_rate)
        run.end_step(step, {"loss": total}, lr=scheduler.get_last_lr()[0])

    teacher = ResShiftModel(ema.cpu().eval(), autoencoder.cpu(), model.config)
    if run.is_main:
        teacher.save_pretrained(out_dir)
    return teacher
