"""The one trainer of every one-step recipe (sr/train/recipes/: SinSR, TAD-SR, Co-learning).

Targets x̂0 (the teacher's deterministic T-step output from the sample's ε) come from the trajectory cache, or are
computed in the loop (`targets="online"`); both draw ε from the sample's seed (sr.seeds), so they agree.

Each optimizer step is a generator pass (the recipe's trained nets against frozen discriminators, plus the
image-space terms of `distill.image` on the decoded one-step output, docs/methods.md §2.4), then a discriminator pass
on the fakes that pass produced (detached). Doing G before D lets gradient accumulation keep only detached latents
between the passes; TAD-SR's code runs D first, which with accumulation would need every
micro-batch's graph or a second student forward (docs/methods.md §3.5).
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.utils import make_grid

from sr.config import DistillParams, DistillRecipe
from sr.data.shards import Sample
from sr.losses.image import ImageLoss
from sr.models.autoencoder import PixelUnshuffleRefine
from sr.models.resshift import ResShiftModel, bicubic_up
from sr.seeds import noise, sample_seed, trajectory_noise_seed, val_noise
from sr.storage import atomic_write_bytes
from sr.train.checkpoint import fingerprint, seed_everything
from sr.train.ema import ema_copy, ema_update
from sr.train.loop import Run, warmup_schedule
from sr.train.recipes.base import DistillBatch, Recipe
from sr.train.recipes.colearn import CoLearning
from sr.train.recipes.sinsr import SinSR
from sr.train.recipes.tadsr import TADSR

StepCallback = Callable[[int, dict[str, float]], None]


def make_recipe(name: DistillRecipe, p: DistillParams, teacher: ResShiftModel) -> Recipe:
    """The recipe `name` with its own params section, and the student's own decoder when `image.refine_decoder`;
    module init draws from the global RNG (the decoder's last, so the recipes' own draws do not depend on it)."""
    if p.image.refine_decoder and teacher.config.autoencoder != "pixel_unshuffle":
        raise ValueError(f"distill.image.refine_decoder needs a pixel_unshuffle teacher, this one's autoencoder "
                         f"is {teacher.config.autoencoder}")
    match name:
        case "sinsr":
            recipe: Recipe = SinSR(p.sinsr, teacher)
        case "tadsr":
            recipe = TADSR(p.tadsr, teacher)
        case "colearn":
            recipe = CoLearning(p.colearn, teacher)
    if p.image.refine_decoder:
        recipe.attach_decoder(PixelUnshuffleRefine(teacher.autoencoder.factor), p.image.decoder_lr)
    return recipe


def recipe_keys(p: DistillParams, name: DistillRecipe) -> tuple[str, ...]:
    """What a recipe's training reads: the shared keys and its own section (its DVC params, and its checkpoints'
    fingerprint), so editing another recipe neither re-runs nor invalidates it."""
    return p.targets, p.train.model_dump_json(), p.image.model_dump_json(), getattr(p, name).model_dump_json()


def with_noise(sample: Sample, seed: int, latent_channels: int, factor: int) -> Sample:
    """Loader transform: ε of the sample, redrawn from its stored seed (cache) or the same derivation (online)."""
    shape = (latent_channels, sample["hq"].shape[-2] // factor, sample["hq"].shape[-1] // factor)
    meta = sample.pop("json", None) or {}
    sample["noise"] = noise(int(meta.get("noise_seed", trajectory_noise_seed(seed, sample["key"]))), shape)
    return sample


@torch.no_grad()
def complete_batch(batch: Sample, teacher: ResShiftModel, online: bool, device: torch.device) -> DistillBatch:
    """One micro-batch on the device with its latents, start state and teacher target."""
    hq, lq, eps = batch["hq"].to(device), batch["lq"].to(device), batch["noise"].to(device)
    y = teacher.encode_lq(lq) if online else batch["y"].to(device)
    x_T = teacher.diffusion.prior_sample(y, eps)
    target = teacher.diffusion.sample(teacher.denoiser, y, lq, eps, deterministic=True) if online \
        else batch["x0"].to(device)
    return DistillBatch(hq, lq, y, teacher.autoencoder.encode(hq), x_T, target)


def train_distill(
    name: DistillRecipe, p: DistillParams, teacher: ResShiftModel, seed: int, data_shards: list[Path],
    out_dir: Path, work_dir: Path, curves_path: Path, grid_samples: list[Sample] | None = None,
    samples_dir: Path | None = None, on_step: StepCallback | None = None, torch_home: Path | None = None,
) -> ResShiftModel:
    """Train one recipe and save its EMA student to `out_dir`. `data_shards`: trajectory shards (cached targets) or
    training shards (online). A grid of `grid_samples` goes to `samples_dir` every `sample_every` steps.
    `on_step(step, stats)` runs after each step (stats: losses, data_s, step_s). `torch_home` holds the LPIPS
    weights, needed when `image.lambda_lpips` > 0."""
    t = p.train
    seed_everything(sample_seed(seed, "distill", name))  # module init draws from the global RNG
    run = Run(f"distill {name}", t, work_dir / fingerprint(name, *recipe_keys(p, name), seed, *data_shards),
              curves_path)
    teacher.to(run.device).eval().requires_grad_(False)
    recipe = make_recipe(name, p, teacher).to(run.device)
    shipped = nn.ModuleDict({"student": recipe.student, **({"decoder": recipe.decoder} if recipe.decoder else {})})
    ema = ema_copy(shipped)
    image_loss = ImageLoss(p.image, teacher.autoencoder.factor, torch_home).to(run.device)
    opt_g = torch.optim.AdamW(recipe.param_groups(t.lr), lr=t.lr, weight_decay=t.weight_decay)
    scheduler = warmup_schedule(opt_g, t.warmup_steps)
    opt_d = torch.optim.AdamW(recipe.discs.parameters(), lr=recipe.disc_lr, weight_decay=t.weight_decay) \
        if recipe.discs else None
    draws = run.draws(sample_seed(seed, "distill", name, 0))
    run.restore({"nets": recipe, "ema": ema, "opt_g": opt_g, "scheduler": scheduler, "opt_d": opt_d},
                draws.generator)
    recipe.prepare(run.prepare)
    opt_g, opt_d = run.prepare(opt_g, opt_d)
    ema.to(run.device)

    transform = functools.partial(with_noise, seed=seed, latent_channels=teacher.config.latent_channels,
                                  factor=teacher.autoencoder.factor)
    batches = run.batches(data_shards, seed, transform)
    for step in run.steps():
        began = time.perf_counter()
        micros = [next(batches) for _ in range(t.grad_accum)]
        data_s = time.perf_counter() - began
        micros = [complete_batch(b, teacher, p.targets == "online", run.device) for b in micros]
        stats = dict.fromkeys(["loss", *recipe.loss_names, *image_loss.names], 0.0)

        for module in recipe.generator_calls():
            module.train()
        recipe.discs.requires_grad_(False)
        fakes = []
        for i, batch in enumerate(micros):
            with run.micro(i, recipe.generator_calls()):
                out = recipe.generator_pass(teacher, batch, draws)
                losses, total = out.losses, out.total
                if image_loss.names:
                    extra, extra_total = image_loss(recipe.decode(teacher, out.x0), batch.hq)
                    losses, total = {**losses, **extra}, total + extra_total
                run.backward(total / t.grad_accum)
            fakes.append(out.fakes)
            stats["loss"] += total.item() / t.grad_accum
            for k, v in losses.items():
                stats[k] += v.item() / t.grad_accum
        run.update(opt_g, scheduler, [q for m in recipe.generator_calls() for q in m.parameters()])

        if opt_d is not None:
            recipe.discs.requires_grad_(True)
            for i, (batch, fake) in enumerate(zip(micros, fakes)):
                with run.micro(i, recipe.disc_calls()):
                    loss_d = recipe.discriminator_loss(teacher, batch, fake)
                    run.backward(loss_d / t.grad_accum)
                stats["loss_d"] += loss_d.item() / t.grad_accum
            run.update(opt_d)
        ema_update(ema, shipped, t.ema_rate)

        done = run.end_step(step, stats, lr=scheduler.get_last_lr()[0])
        if run.is_main and grid_samples and samples_dir and (done % p.sample_every == 0 or done == t.steps):
            save_grid(one_step_model(teacher, ema, name), grid_samples, seed, samples_dir / f"step-{done:08d}.png")
        if on_step is not None:
            on_step(done, {**stats, "data_s": data_s, "step_s": time.perf_counter() - began})

    student = one_step_model(teacher, ema, name).cpu()
    if run.is_main:
        student.save_pretrained(out_dir)
    return student


def one_step_model(teacher: ResShiftModel, ema: nn.ModuleDict, name: DistillRecipe) -> ResShiftModel:
    """The student as it ships, on the EMA weights (shared, not copied): its denoiser, and its own decoder if any."""
    config = teacher.config.model_copy(update={"inference_steps": 1, "recipe": name})
    if "decoder" not in ema:
        return ResShiftModel(ema["student"], teacher.autoencoder, config).eval()
    config = config.model_copy(update={"autoencoder": "pixel_unshuffle_refine"})
    return ResShiftModel(ema["student"], ema["decoder"], config).eval()


@torch.no_grad()
def save_grid(model: ResShiftModel, samples: list[Sample], seed: int, path: Path) -> None:
    """Rows of bicubic | one-step student | HQ for a few fixed val samples."""
    device = next(model.parameters()).device
    lq = torch.stack([s["lq"] for s in samples]).to(device)
    shape = (model.config.latent_channels, *[d // model.autoencoder.factor for d in samples[0]["hq"].shape[-2:]])
    eps = val_noise([s["key"] for s in samples], seed, shape).to(device)
    bicubic = bicubic_up(lq, model.scale).clamp(-1, 1)
    hq = torch.stack([s["hq"] for s in samples]).to(device)
    rows = torch.stack([bicubic, model.upscale(lq, eps), hq], dim=1).flatten(0, 1)
    grid = make_grid((rows.cpu() + 1) / 2, nrow=3, padding=2)
    buffer = io.BytesIO()
    Image.fromarray((grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
