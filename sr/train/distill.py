"""One trainer for every one-step recipe (METHODS.md §2 SinSR, §3 TAD-SR, §5 Co-learning).

The student starts as a copy of the frozen teacher and always runs at the last index from x_T = y + κ√η_T·ε.
Targets x̂0 (the teacher's deterministic T-step output from the same ε) come from the trajectory cache, or are
computed in the loop (`targets="online"`); both draw ε from the sample's seed, so they agree.

Each optimizer step is a generator pass (student, and Co-learning's downsampler G, against frozen discriminators),
then a discriminator pass on the fakes that pass produced (detached). Doing G before D lets gradient accumulation
keep only detached latents between the passes; TAD-SR's code runs D first, which with accumulation would need
every micro-batch's graph or a second student forward.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from sr.config import DistillParams, DistillRecipe
from sr.data.shards import Sample, make_loader, sample_seed
from sr.data.trajectories import noise_for
from sr.diffusion.resshift import ResShift
from sr.losses import adversarial, distillation, hsd
from sr.models.build import ResShiftModel, save_model_dir
from sr.models.discriminators import LatentDiscriminator, TimeAwareDiscriminator, feature_channels
from sr.models.downsampler import build_downsampler
from sr.storage import atomic_write_bytes, atomic_write_text
from sr.train.checkpoint import fingerprint, load_latest, rng_state, save_checkpoint, seed_everything, set_rng_state
from sr.train.curves import Curves
from sr.train.ema import ema_copy, ema_update
from sr.train.setup import make_accelerator, warmup_schedule
from sr.train.teacher import encode_lq, upsample

StepCallback = Callable[[int, dict[str, float]], None]


def loss_names(recipe: DistillRecipe) -> list[str]:
    match recipe:
        case "sinsr":
            return ["distill", "inverse", "gt"]
        case "tadsr":
            return ["mse", "hsd", "adv", "loss_d"]
        case "colearn":
            return ["distill", "gt", "hq_adv", "lq_adv", "down", "loss_d"]


def with_noise(sample: Sample, seed: int, latent_channels: int, factor: int) -> Sample:
    """Loader transform: ε of the sample, redrawn from its stored seed (cache) or the same derivation (online)."""
    h, w = sample["hq"].shape[-2] // factor, sample["hq"].shape[-1] // factor
    shape = (latent_channels, h, w)
    meta = sample.get("json") or {}
    if "noise_seed" in meta:
        sample["noise"] = torch.randn(shape, generator=torch.Generator().manual_seed(int(meta["noise_seed"])))
    else:
        sample["noise"] = noise_for(sample["key"], seed, shape)[1]
    sample.pop("json", None)
    return sample


# ---------------------------------------------------------------------------------------------------- networks


class Nets(nn.Module):
    """Everything the recipe trains; `discs` is empty for SinSR, G exists only for Co-learning."""

    def __init__(self, recipe: DistillRecipe, p: DistillParams, teacher: ResShiftModel, probe: torch.Tensor) -> None:
        super().__init__()
        self.student = copy.deepcopy(teacher.denoiser).train().requires_grad_(True)
        self.downsampler: nn.Module | None = None
        self.discs = nn.ModuleDict()
        channels = int(teacher.config["latent_channels"])
        match recipe:
            case "tadsr":
                lq = probe.new_zeros(probe.shape[0], 3, *probe.shape[-2:])
                widths = feature_channels(teacher.denoiser.encoder_features, probe, lq)
                embed_dim = int(teacher.config["unet" if teacher.config["arch"] == "unet" else "swin"]["model_channels"])
                self.discs["latent"] = TimeAwareDiscriminator(widths, embed_dim, p.tadsr.c_dim)
            case "colearn":
                c = p.colearn
                arch = teacher.config["arch"]
                from sr.config import SwinUNetParams, UNetParams

                self.downsampler = build_downsampler(
                    c.downsampler, arch, UNetParams(**teacher.config["unet"]), SwinUNetParams(**teacher.config["swin"]),
                    channels,
                )
                self.discs["hq"] = LatentDiscriminator(channels, c.disc_channels, c.disc_levels, c.c_dim)
                self.discs["lq"] = LatentDiscriminator(channels, c.disc_channels, c.disc_levels, c.c_dim)


def _micro_data(batch: Sample, teacher: ResShiftModel, online: bool, device: torch.device) -> dict[str, torch.Tensor]:
    """Move one micro-batch to the device and complete it: z_hq, y, x_T and the teacher target."""
    ae, diffusion = teacher.autoencoder, teacher.diffusion
    hq, lq, noise = batch["hq"].to(device), batch["lq"].to(device), batch["noise"].to(device)
    with torch.no_grad():
        z_hq = ae.encode(hq)
        y = encode_lq(ae, lq, teacher.scale) if online else batch["y"].to(device)
        x_T = diffusion.prior_sample(y, noise)
        if online:
            target = diffusion.sample(teacher.denoiser, y, lq, noise, deterministic=True)
        else:
            target = batch["x0"].to(device)
    return {"hq": hq, "lq": lq, "y": y, "z_hq": z_hq, "x_T": x_T, "target": target}


def _randint(high: int, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(high, (n,), generator=generator).to(device)


def _randn(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator).to(like.device, like.dtype)


def generator_losses(
    recipe: DistillRecipe, p: DistillParams, nets: Nets, student: nn.Module, downsampler: nn.Module | None,
    teacher: ResShiftModel, d: dict[str, torch.Tensor], generator: torch.Generator,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """(unweighted losses, what the discriminator pass needs, weighted total). `student` / `downsampler` are the
    (possibly DDP-wrapped) modules to call; `nets.discs` are called unwrapped and frozen."""
    diffusion, lq, y = teacher.diffusion, d["lq"], d["y"]
    z_s = distillation.one_step(student, diffusion, d["x_T"], lq)
    n = z_s.shape[0]
    match recipe:
        case "sinsr":
            c = p.sinsr
            losses = {
                "distill": distillation.distill_loss(z_s, d["target"]).mean(),
                "inverse": distillation.inverse_loss(student, diffusion, d["target"], d["x_T"], lq).mean(),
                "gt": distillation.gt_loss(student, diffusion, d["z_hq"], lq).mean(),
            }
            total = c.lambda_distill * losses["distill"] + c.lambda_inverse * losses["inverse"] + c.lambda_gt * losses["gt"]
            return losses, {}, total
        case "tadsr":
            c = p.tadsr
            s = _randint(c.hsd_steps, n, generator, z_s.device)
            direction = hsd.hsd_direction(
                teacher.denoiser, diffusion, z_s.detach(), d["target"], y, lq, s, _randn(z_s, generator)
            )
            t_d = _randint(diffusion.steps - 1, n, generator, z_s.device)
            noise_d = _randn(z_s, generator)
            fake = _noisy_features(teacher, z_s, y, lq, t_d, noise_d)
            losses = {
                "mse": distillation.distill_loss(z_s, d["target"]).mean(),
                "hsd": hsd.hsd_loss(z_s, direction).mean(),
                "adv": adversarial.hinge_g_loss(nets.discs["latent"](fake, t_d)),
            }
            total = c.lambda_mse * losses["mse"] + c.lambda_hsd * losses["hsd"] + c.lambda_adv * losses["adv"]
            return losses, {"fake": z_s.detach(), "t_d": t_d, "noise_d": noise_d}, total
        case "colearn":
            c = p.colearn
            assert downsampler is not None
            # one G call for both of its inputs: the student's output (adversarial) and the HQ latent (regression)
            y_hat, y_rec = downsampler(
                torch.cat([z_s, d["z_hq"]]), torch.cat([_randn(z_s, generator), _randn(z_s, generator)])
            ).chunk(2)
            losses = {
                "distill": distillation.distill_loss(z_s, d["target"]).mean(),
                "gt": distillation.mse(z_s, d["z_hq"]).mean(),
                "hq_adv": adversarial.logistic_g_loss(nets.discs["hq"](z_s), c.g_loss),
                "lq_adv": adversarial.logistic_g_loss(nets.discs["lq"](y_hat), c.g_loss),
                "down": distillation.mse(y_rec, y).mean(),
            }
            total = (c.lambda_distill * losses["distill"] + c.lambda_gt * losses["gt"]
                     + c.lambda_hq_adv * losses["hq_adv"] + c.lambda_lq_adv * losses["lq_adv"]
                     + c.lambda_down * losses["down"])  # fmt: skip
            return losses, {"fake": z_s.detach(), "y_hat": y_hat.detach()}, total


def _noisy_features(
    teacher: ResShiftModel, z: torch.Tensor, y: torch.Tensor, lq: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
) -> list[torch.Tensor]:
    """The frozen teacher encoder's features of q(z, t) (with gradient to z when z has one)."""
    diffusion = teacher.diffusion
    xt = diffusion.q_sample(z, y, t, noise)
    return teacher.denoiser.encoder_features(diffusion.scale_input(xt, t), t, lq)


def discriminator_loss(
    recipe: DistillRecipe, discs: dict[str, nn.Module], teacher: ResShiftModel, d: dict[str, torch.Tensor],
    keep: dict[str, torch.Tensor],
) -> torch.Tensor:
    """Real and fake go through each discriminator as one doubled batch (GroupNorm is per sample)."""
    match recipe:
        case "tadsr":
            t2 = torch.cat([keep["t_d"], keep["t_d"]])
            with torch.no_grad():
                feats = _noisy_features(
                    teacher, torch.cat([d["z_hq"], keep["fake"]]), torch.cat([d["y"], d["y"]]),
                    torch.cat([d["lq"], d["lq"]]), t2, torch.cat([keep["noise_d"], keep["noise_d"]]),
                )
            real, fake = zip(*(logit.chunk(2) for logit in discs["latent"](feats, t2)))
            return adversarial.hinge_d_loss(list(real), list(fake))
        case "colearn":
            total = torch.zeros((), device=d["y"].device)
            for name, real_x, fake_x in (("hq", d["z_hq"], keep["fake"]), ("lq", d["y"], keep["y_hat"])):
                real, fake = zip(*(logit.chunk(2) for logit in discs[name](torch.cat([real_x, fake_x]))))
                total = total + adversarial.logistic_d_loss(list(real), list(fake))
            return total
    raise ValueError(f"recipe {recipe!r} has no discriminator")


# ---------------------------------------------------------------------------------------------------- training


def _no_sync(accelerator, modules: list[nn.Module], skip: bool) -> contextlib.ExitStack:
    """Skip DDP's gradient all-reduce on every micro-batch but the last of an optimizer step."""
    stack = contextlib.ExitStack()
    if skip:
        for module in modules:
            stack.enter_context(accelerator.no_sync(module))
    return stack


def train_distill(
    recipe: DistillRecipe, p: DistillParams, teacher: ResShiftModel, seed: int, data_shards: list[Path],
    out_dir: Path, work_dir: Path, curves_path: Path, grid_samples: list[Sample] | None = None,
    samples_dir: Path | None = None, on_step: StepCallback | None = None,
) -> ResShiftModel:
    """Train one recipe; checkpoints under `work_dir/<fingerprint>/` (resumed automatically), the EMA student is
    saved to `out_dir` as a model folder. `data_shards` are trajectory shards (cached targets) or training shards
    (online). A grid of `grid_samples` goes to `samples_dir` every `sample_every` steps. `on_step(step, stats)` runs
    after each step's checkpoint (stats: losses, data_s, step_s)."""
    t = p.train
    online = p.targets == "online"
    seed_everything(sample_seed(seed, "distill", recipe))  # module init draws from the global RNG
    accelerator = make_accelerator(t.mixed_precision)
    device = accelerator.device
    teacher.denoiser.to(device).eval().requires_grad_(False)
    teacher.autoencoder.to(device).eval().requires_grad_(False)
    diffusion: ResShift = teacher.diffusion
    channels, factor = int(teacher.config["latent_channels"]), int(teacher.autoencoder.factor)
    size = (grid_samples[0]["hq"].shape[-1] if grid_samples else 8 * factor * 8) // factor
    nets = Nets(recipe, p, teacher, torch.zeros(1, channels, size, size, device=device)).to(device)
    ema = ema_copy(nets.student)
    groups = [{"params": list(nets.student.parameters()), "lr": t.lr}]
    if nets.downsampler is not None:
        groups.append({"params": list(nets.downsampler.parameters()), "lr": p.colearn.downsampler_lr})
    opt_g = torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
    scheduler = warmup_schedule(opt_g, t.warmup_steps)
    disc_lr = p.tadsr.disc_lr if recipe == "tadsr" else p.colearn.disc_lr
    opt_d = torch.optim.AdamW(nets.discs.parameters(), lr=disc_lr, weight_decay=t.weight_decay) if nets.discs else None
    generator = torch.Generator().manual_seed(sample_seed(seed, "distill", recipe, accelerator.process_index))

    ckpt_dir = work_dir / fingerprint(recipe, p.model_dump_json(), seed, *data_shards)
    start = 0
    state = load_latest(ckpt_dir)
    if state is not None:
        start = state["step"]
        nets.load_state_dict(state["nets"])
        ema.load_state_dict(state["ema"])
        opt_g.load_state_dict(state["opt_g"])
        scheduler.load_state_dict(state["scheduler"])
        if opt_d is not None:
            opt_d.load_state_dict(state["opt_d"])
        set_rng_state(state["rng"], generator)
        print(f"distill {recipe}: resumed from checkpoint at step {start} ({ckpt_dir})", flush=True)

    student, opt_g = accelerator.prepare(nets.student, opt_g)
    downsampler = accelerator.prepare(nets.downsampler) if nets.downsampler is not None else None
    discs = {name: accelerator.prepare(disc) for name, disc in nets.discs.items()}
    if opt_d is not None:
        opt_d = accelerator.prepare(opt_d)
    ema.to(device)
    trained = [m for m in (student, downsampler) if m is not None]

    loader = make_loader(
        data_shards, t.batch_size, seed, t.shuffle_buffer, t.num_workers, accelerator.process_index,
        accelerator.num_processes, skip_batches=start * t.grad_accum,
        transform=functools.partial(with_noise, seed=seed, latent_channels=channels, factor=factor),
    )
    batches = iter(loader)
    names = loss_names(recipe)
    curves = Curves(curves_path, ["loss", *names, "lr"], resume_step=start)
    running: dict[str, float] = {}
    bar = tqdm(range(start, t.steps), initial=start, total=t.steps, desc=f"distill {recipe}", mininterval=2,
               disable=not accelerator.is_main_process)
    for step in bar:
        began = time.perf_counter()
        micros = [next(batches) for _ in range(t.grad_accum)]
        data_s = time.perf_counter() - began
        micros = [_micro_data(b, teacher, online, device) for b in micros]
        stats = dict.fromkeys(["loss", *names], 0.0)

        # generator pass: discriminators frozen and called unwrapped (no DDP sync for them here)
        for m in trained:
            m.train()
        nets.discs.requires_grad_(False)
        kept = []
        for i, d in enumerate(micros):
            with _no_sync(accelerator, trained, i < t.grad_accum - 1), accelerator.autocast():
                losses, keep, total = generator_losses(recipe, p, nets, student, downsampler, teacher, d, generator)
                accelerator.backward(total / t.grad_accum)
            kept.append(keep)
            stats["loss"] += total.item() / t.grad_accum
            for k, v in losses.items():
                stats[k] += v.item() / t.grad_accum
        if t.grad_clip:
            accelerator.clip_grad_norm_([q for m in trained for q in m.parameters()], t.grad_clip)
        opt_g.step()
        scheduler.step()
        opt_g.zero_grad(set_to_none=True)

        # discriminator pass on this step's fakes
        if opt_d is not None:
            nets.discs.requires_grad_(True)
            for i, (d, keep) in enumerate(zip(micros, kept)):
                with _no_sync(accelerator, list(discs.values()), i < t.grad_accum - 1), accelerator.autocast():
                    loss_d = discriminator_loss(recipe, discs, teacher, d, keep)
                    accelerator.backward(loss_d / t.grad_accum)
                stats["loss_d"] += loss_d.item() / t.grad_accum
            opt_d.step()
            opt_d.zero_grad(set_to_none=True)
        ema_update(ema, accelerator.unwrap_model(student), t.ema_rate)

        done = step + 1
        running = {k: v if k not in running else 0.9 * running[k] + 0.1 * v for k, v in stats.items()}
        bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()}, refresh=False)
        if done % t.log_every == 0 or done == t.steps:
            curves.log(done, **stats, lr=scheduler.get_last_lr()[0])
        if accelerator.is_main_process and grid_samples and samples_dir and (done % p.sample_every == 0 or done == t.steps):
            save_grid(ema, teacher, grid_samples, seed, samples_dir / f"step-{done:08d}.png")
        if accelerator.is_main_process and (done % t.ckpt_every == 0 or done == t.steps):
            save_checkpoint(ckpt_dir, done, {
                "nets": nets.state_dict(), "ema": ema.state_dict(), "opt_g": opt_g.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": rng_state(generator),
                **({"opt_d": opt_d.state_dict()} if opt_d is not None else {}),
            })  # fmt: skip
            curves.flush()
        if on_step is not None:
            on_step(done, {**stats, "data_s": data_s, "step_s": time.perf_counter() - began})

    config = {**teacher.config, "steps_inference": 1, "recipe": recipe}
    model = ResShiftModel(ema.cpu().eval(), teacher.autoencoder.cpu(), diffusion, config)
    if accelerator.is_main_process:
        save_model_dir(out_dir, model)
    return model


# ---------------------------------------------------------------------------------------------------- outputs


def val_noise(key: str, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The validation ε of a sample: the teacher's evaluation draws exactly this (sr.train.teacher.upscale)."""
    return torch.randn((1, *shape), generator=torch.Generator().manual_seed(sample_seed(seed, "val-noise", key)))[0]


@torch.no_grad()
def one_step_upscale(model: ResShiftModel, lq: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """LQ in [-1, 1] -> HQ estimate in [-1, 1] with one student step from x_T = y + κ√η_T·noise."""
    y = encode_lq(model.autoencoder, lq, model.scale)
    x0 = distillation.one_step(model.denoiser, model.diffusion, model.diffusion.prior_sample(y, noise), lq)
    return model.autoencoder.decode(x0).clamp(-1, 1)


@torch.no_grad()
def save_grid(student: nn.Module, teacher: ResShiftModel, samples: list[Sample], seed: int, path: Path) -> None:
    """Rows of bicubic | one-step student | HQ for a few fixed val samples."""
    from torchvision.utils import make_grid

    device = next(student.parameters()).device
    lq = torch.stack([s["lq"] for s in samples]).to(device)
    channels = int(teacher.config["latent_channels"])
    shape = (channels, *[d // teacher.autoencoder.factor for d in samples[0]["hq"].shape[-2:]])
    noise = torch.stack([val_noise(s["key"], seed, shape) for s in samples]).to(device)
    model = ResShiftModel(student.eval(), teacher.autoencoder, teacher.diffusion, teacher.config)
    out = one_step_upscale(model, lq, noise)
    bicubic = upsample(lq, teacher.scale).clamp(-1, 1)
    hq = torch.stack([s["hq"] for s in samples]).to(device)
    rows = torch.stack([bicubic, out, hq], dim=1).flatten(0, 1)
    grid = make_grid((rows.cpu() + 1) / 2, nrow=3, padding=2)
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def evaluate_student(
    student: ResShiftModel, teacher: ResShiftModel, val: list[Sample], seed: int, metrics_path: Path,
    torch_home: Path, batch_size: int, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Val PSNR(Y) of the one-step student, the T-step teacher and bicubic from the same seeded ε; LPIPS (alex)
    too when its offline weights are under `torch_home`."""
    from sr.eval.metrics import Metrics
    from sr.eval.weights import lpips_paths

    metric = Metrics(torch_home)
    with_lpips = all(f.exists() for f in lpips_paths(torch_home, "alex"))
    scale = student.scale
    channels = int(student.config["latent_channels"])
    sums: dict[str, float] = {}
    for begin in tqdm(range(0, len(val), batch_size), desc="distill val", mininterval=2):
        chunk = val[begin : begin + batch_size]
        lq, hq = torch.stack([s["lq"] for s in chunk]), torch.stack([s["hq"] for s in chunk])
        shape = (channels, *[d // student.autoencoder.factor for d in hq.shape[-2:]])
        noise = torch.stack([val_noise(s["key"], seed, shape) for s in chunk])
        y = encode_lq(teacher.autoencoder, lq, scale)
        with torch.no_grad():
            x0 = teacher.diffusion.sample(teacher.denoiser, y, lq, noise, deterministic=True)
        outputs = {
            "student": one_step_upscale(student, lq, noise),
            "teacher": teacher.autoencoder.decode(x0).clamp(-1, 1),
            "bicubic": upsample(lq, scale).clamp(-1, 1),
        }
        hq01 = (hq + 1) / 2
        for name, out in outputs.items():
            out01 = (out + 1) / 2
            psnr = float(metric.psnr_y(out01, hq01, crop_border=scale).sum())
            sums[f"psnr_y_{name}"] = sums.get(f"psnr_y_{name}", 0.0) + psnr
            if with_lpips:
                sums[f"lpips_{name}"] = sums.get(f"lpips_{name}", 0.0) + float(metric.lpips(out01, hq01).sum())
    metrics: dict[str, Any] = {k: round(v / len(val), 4) for k, v in sorted(sums.items())}
    metrics["psnr_y_gap_to_teacher_db"] = round(metrics["psnr_y_teacher"] - metrics["psnr_y_student"], 4)
    metrics["psnr_y_gain_over_bicubic_db"] = round(metrics["psnr_y_student"] - metrics["psnr_y_bicubic"], 4)
    metrics.update({"val_samples": len(val), "steps_teacher": teacher.diffusion.steps, "steps_student": 1})
    metrics.update(extra or {})
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


