"""The ResShift teacher: trained from scratch (x0 MSE, AdamW + warmup, EMA), or imported from official weights."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sr.config import TeacherParams
from sr.data.shards import iter_samples, make_loader, sample_seed
from sr.diffusion.resshift import ResShift
from sr.models.build import ResShiftModel, build_autoencoder, build_denoiser, model_config, save_model_dir
from sr.storage import atomic_write_text, materialize
from sr.train.checkpoint import fingerprint, load_latest, rng_state, save_checkpoint, seed_everything, set_rng_state
from sr.train.curves import Curves
from sr.train.ema import ema_copy, ema_update
from sr.train.setup import make_accelerator, warmup_schedule


def upsample(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic ×scale in [-1, 1] without clamping, as ResShift builds its y = E(bicubic↑lq)."""
    return F.interpolate(lq, scale_factor=scale, mode="bicubic", align_corners=False)


@torch.no_grad()
def encode_lq(autoencoder: torch.nn.Module, lq: torch.Tensor, scale: int) -> torch.Tensor:
    """y = E(bicubic↑lq): the latent the diffusion shifts towards."""
    return autoencoder.encode(upsample(lq, scale))


def rotate_pairs(hq: torch.Tensor, lq: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each (hq, lq) pair of a batch by its own random multiple of 90°."""
    turns = torch.randint(4, (hq.shape[0],), generator=generator).tolist()
    hq = torch.stack([x.rot90(k, (-2, -1)) for x, k in zip(hq, turns)])
    lq = torch.stack([x.rot90(k, (-2, -1)) for x, k in zip(lq, turns)])
    return hq, lq


@torch.no_grad()
def fit_lq_skip(denoiser: torch.nn.Module, autoencoder: torch.nn.Module, shards: list[Path], samples: int = 1024) -> None:
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


def import_teacher(p: TeacherParams, scale: int, out_dir: Path, cache_dir: Path) -> ResShiftModel:
    """Official ResShift weights -> our model folder; loads strictly and checks a forward pass is finite."""
    from sr.models.official import import_resshift_unet

    assert p.checkpoint is not None
    denoiser = import_resshift_unet(materialize(p.checkpoint, cache_dir), p.swin)
    autoencoder = build_autoencoder(p.autoencoder, cache_dir, scale)
    config = model_config(p.arch, p.unet, p.swin, p.autoencoder, p.diffusion, scale, autoencoder.channels,
                          source=p.checkpoint)
    model = ResShiftModel(denoiser.eval(), autoencoder, ResShift.from_params(p.diffusion), config)
    size = 8 * autoencoder.factor
    lq = torch.zeros(1, 3, size // scale, size // scale)
    y = encode_lq(autoencoder, lq, scale)
    with torch.no_grad():
        out = denoiser(model.diffusion.scale_input(y, torch.tensor([p.diffusion.steps - 1])),
                       torch.tensor([p.diffusion.steps - 1]), F.interpolate(lq, size=y.shape[-2:]))
    if not torch.isfinite(out).all():
        raise ValueError(f"{p.checkpoint}: imported teacher produces non-finite outputs")
    save_model_dir(out_dir, model)
    return model


def train_teacher(
    p: TeacherParams, seed: int, scale: int, train_shards: list[Path], out_dir: Path, work_dir: Path,
    curves_path: Path,
) -> ResShiftModel:
    """Train from scratch; checkpoints go to `work_dir/<fingerprint>/` so a changed config never resumes a stale run."""
    t = p.train
    accelerator = make_accelerator(t.mixed_precision)
    device = accelerator.device
    autoencoder = build_autoencoder(p.autoencoder, work_dir / "cache", scale)
    seed_everything(sample_seed(seed, "teacher-init"))  # weight init draws from the global RNG
    denoiser = build_denoiser(p.arch, p.unet, p.swin, autoencoder.channels)
    if hasattr(denoiser, "lq_skip"):
        fit_lq_skip(denoiser, autoencoder, train_shards)
    autoencoder.to(device)
    ema = ema_copy(denoiser)
    diffusion = ResShift.from_params(p.diffusion)
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    scheduler = warmup_schedule(optimizer, t.warmup_steps)
    generator = torch.Generator().manual_seed(sample_seed(seed, "teacher", accelerator.process_index))

    ckpt_dir = work_dir / fingerprint(p.model_dump_json(), seed, scale, *train_shards)
    start = 0
    state = load_latest(ckpt_dir)
    if state is not None:
        start = state["step"]
        denoiser.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], generator)
        print(f"teacher: resumed from checkpoint at step {start} ({ckpt_dir})", flush=True)
    denoiser, optimizer = accelerator.prepare(denoiser, optimizer)
    ema.to(device)

    loader = make_loader(
        train_shards, t.batch_size, seed, t.shuffle_buffer, t.num_workers, accelerator.process_index,
        accelerator.num_processes, skip_batches=start * t.grad_accum,
    )
    batches = iter(loader)
    curves = Curves(curves_path, ["loss", "lr"], resume_step=start)
    bar = tqdm(range(start, t.steps), initial=start, total=t.steps, desc="teacher", mininterval=2,
               disable=not accelerator.is_main_process)
    for step in bar:
        denoiser.train()
        total = 0.0
        for micro in range(t.grad_accum):
            batch = next(batches)
            hq, lq = batch["hq"], batch["lq"]
            if p.rot90:
                hq, lq = rotate_pairs(hq, lq, generator)
            hq, lq = hq.to(device), lq.to(device)
            with torch.no_grad():
                x0, y = autoencoder.encode(hq), encode_lq(autoencoder, lq, scale)
            steps = torch.randint(diffusion.steps, (hq.shape[0],), generator=generator).to(device)
            noise = torch.randn(x0.shape, generator=generator).to(device)
            sync = nullcontext() if micro == t.grad_accum - 1 else accelerator.no_sync(denoiser)
            with sync, accelerator.autocast():
                loss = diffusion.training_loss(denoiser, x0, y, lq, steps, noise).mean() / t.grad_accum
                accelerator.backward(loss)
            total += loss.item()
        if t.grad_clip:
            accelerator.clip_grad_norm_(denoiser.parameters(), t.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ema_update(ema, accelerator.unwrap_model(denoiser), t.ema_rate)

        done = step + 1
        if done % t.log_every == 0 or done == t.steps:
            curves.log(done, loss=total, lr=scheduler.get_last_lr()[0])
            bar.set_postfix(loss=f"{total:.4f}")
        if accelerator.is_main_process and (done % t.ckpt_every == 0 or done == t.steps):
            save_checkpoint(ckpt_dir, done, {
                "model": accelerator.unwrap_model(denoiser).state_dict(), "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(generator),
            })
            curves.flush()

    config = model_config(p.arch, p.unet, p.swin, p.autoencoder, p.diffusion, scale, autoencoder.channels)
    model = ResShiftModel(ema.cpu().eval(), autoencoder.cpu(), diffusion, config)
    if accelerator.is_main_process:
        save_model_dir(out_dir, model)
    return model


@torch.no_grad()
def upscale(model: ResShiftModel, lq: torch.Tensor, noise_seed: int, deterministic: bool = True) -> torch.Tensor:
    """LQ in [-1, 1] -> HQ estimate in [-1, 1] with the teacher's T-step sampler. One noise draw per call, from
    `noise_seed`, so results are reproducible."""
    y = encode_lq(model.autoencoder, lq, model.scale)
    generator = torch.Generator().manual_seed(noise_seed)
    noise = torch.randn(y.shape, generator=generator).to(y.device)
    x0 = model.diffusion.sample(model.denoiser, y, lq, noise, deterministic=deterministic, generator=generator)
    return model.autoencoder.decode(x0).clamp(-1, 1)


def evaluate_teacher(model: ResShiftModel, val_shards: list[Path], seed: int, metrics_path: Path) -> dict:
    """Teacher (T steps) vs bicubic PSNR(Y) on the val shards' Real-ESRGAN LQ."""
    from sr.eval.metrics import Metrics
    from sr.eval.weights import default_torch_home

    psnr_y = Metrics(default_torch_home()).psnr_y
    sums = {"teacher": 0.0, "bicubic": 0.0}
    count = 0
    for sample in tqdm(list(iter_samples(val_shards)), desc="teacher val", mininterval=2):
        hq, lq = sample["hq"][None], sample["lq"][None]
        hq01 = (hq + 1) / 2
        out = upscale(model, lq, sample_seed(seed, "val-noise", sample["key"]))
        bicubic = upsample(lq, model.scale).clamp(-1, 1)
        sums["teacher"] += psnr_y((out + 1) / 2, hq01, crop_border=model.scale).item()
        sums["bicubic"] += psnr_y((bicubic + 1) / 2, hq01, crop_border=model.scale).item()
        count += 1
    metrics = {f"psnr_y_{k}": round(v / count, 4) for k, v in sums.items()}
    metrics["psnr_y_gain_db"] = round(metrics["psnr_y_teacher"] - metrics["psnr_y_bicubic"], 4)
    metrics["val_samples"] = count
    metrics["steps"] = model.diffusion.steps
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics
