"""The GAN baseline (docs/methods.md §6.4): what a user would train instead of a diffusion model. Real-ESRGAN's recipe
on the same train shards: SRVGGNetCompact (sr/models/srvgg.py) with L1 first, then L1 + perceptual + GAN against
basicsr's UNetDiscriminatorSN (non-saturating BCE), Adam(0.9, 0.99) as Real-ESRGAN's options. basicsr's VGG19
PerceptualLoss needs hub weights that are not available offline, so the perceptual term is LPIPS
(sr.losses.perceptual), which is provisioned offline.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from sr.config import BaselineParams
from sr.losses.perceptual import LPIPSLoss
from sr.models.srvgg import SRVGGConfig, SRVGGModel
from sr.seeds import sample_seed
from sr.train.checkpoint import fingerprint, seed_everything
from sr.train.loop import Run, warmup_schedule


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))


def train_baseline(
    p: BaselineParams, seed: int, scale: int, train_shards: list[Path], out_dir: Path, work_dir: Path,
    curves_path: Path, torch_home: Path,
) -> SRVGGModel:
    """Train and save the generator to `out_dir`; resumes from `work_dir/<fingerprint>/`."""
    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN  # basicsr pulls torchvision: only here

    t = p.train
    run = Run("baseline", t, work_dir / fingerprint(p.model_dump_json(), seed, scale, *train_shards), curves_path)
    seed_everything(sample_seed(seed, "baseline-init"))  # weight init draws from the global RNG
    model = SRVGGModel.build(SRVGGConfig(scale=scale, num_feat=p.num_feat, num_conv=p.num_conv)).to(run.device)
    disc = UNetDiscriminatorSN(3, p.disc_feat).to(run.device)
    lpips_fn = LPIPSLoss(torch_home, p.lpips_net).to(run.device) if p.lambda_lpips else None
    opt_g = torch.optim.Adam(model.parameters(), lr=t.lr, betas=(0.9, 0.99), weight_decay=t.weight_decay)
    opt_d = torch.optim.Adam(disc.parameters(), lr=p.disc_lr, betas=(0.9, 0.99), weight_decay=t.weight_decay)
    scheduler = warmup_schedule(opt_g, t.warmup_steps)
    run.restore({"model": model, "disc": disc, "opt_g": opt_g, "opt_d": opt_d, "scheduler": scheduler})
    model_call, disc_call, opt_g, opt_d = run.prepare(model, disc, opt_g, opt_d)

    batches = run.batches(train_shards, seed)
    for step in run.steps():
        adversarial = step >= p.l1_steps
        micros = [next(batches) for _ in range(t.grad_accum)]
        stats = dict.fromkeys(["loss", "l1", *(["lpips"] if lpips_fn else []), "gan", "loss_d"], 0.0)  # 0 until GAN
        model_call.train()
        disc.requires_grad_(False)  # the G pass calls it unwrapped and frozen (DDP: its wrapper only in the D pass)
        outs = []
        for i, batch in enumerate(micros):
            hq, lq = batch["hq"].to(run.device), batch["lq"].to(run.device)
            with run.micro(i, [model_call]):
                out = model_call(lq)
                parts = {"l1": F.l1_loss(out, hq)}
                if adversarial:
                    if lpips_fn is not None:
                        parts["lpips"] = lpips_fn(out, hq)
                    parts["gan"] = _bce(disc(out), True)
                weights = {"l1": p.lambda_l1, "lpips": p.lambda_lpips, "gan": p.lambda_gan}
                loss = sum(weights[k] * v for k, v in parts.items())
                run.backward(loss / t.grad_accum)
            outs.append((hq, out.detach()))
            stats["loss"] += loss.item() / t.grad_accum
            for k, v in parts.items():
                stats[k] += v.item() / t.grad_accum
        run.update(opt_g, scheduler, clip=model.parameters())
        if adversarial:
            disc.requires_grad_(True)
            for i, (hq, fake) in enumerate(outs):
                with run.micro(i, [disc_call]):
                    real_logits, fake_logits = disc_call(torch.cat([hq, fake])).chunk(2)
                    loss_d = _bce(real_logits, True) + _bce(fake_logits, False)
                    run.backward(loss_d / t.grad_accum)
                stats["loss_d"] += loss_d.item() / t.grad_accum
            run.update(opt_d)
        run.end_step(step, stats, lr=scheduler.get_last_lr()[0])

    model = run.unwrap(model_call).cpu().eval()
    if run.is_main:
        model.save_pretrained(out_dir)
    return model
