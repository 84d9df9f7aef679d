"""OSEDiff training (docs/methods.md §4.3, §4.5): LoRA on SD's VAE encoder and UNet, one step at t=999.

Each iteration: a generator step on  λ_l2·MSE + λ_lpips·LPIPS + λ_vsd·VSD  (real score = the frozen base UNet with
CFG against the negative prompt, fake score = a LoRA'd copy), then the fake score's ε-MSE step on the detached ẑ.
The base model is an SD-format checkpoint (path or s3://) or, for the embedded default, a small SD-shaped model
pre-trained here on the train shards (VAE as an autoencoder, then the UNet's ε-prediction) so it is a real prior.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sr.config import MixedPrecision, OsediffParams, PromptParams
from sr.data.shards import make_loader
from sr.diffusion.sd import NUM_TIMESTEPS, add_noise
from sr.losses.perceptual import LPIPSLoss
from sr.losses.vsd import fake_score_loss, generator_loss, vsd_loss
from sr.models.osediff import (
    BASE_DIR,
    AdapterState,
    OSEDiffConfig,
    OSEDiffStudent,
    make_fake_score,
    make_generator,
    prompt_config,
    upsample,
)
from sr.models.sd import SDComponents, build_small_sd, encode_prompts, load_sd, save_sd
from sr.models.tagger import Prompter, load_tagger
from sr.seeds import sample_seed
from sr.storage import materialize
from sr.train.checkpoint import fingerprint
from sr.train.loop import Run, warmup_schedule

Validate = Callable[[str, OSEDiffStudent], None]  # (name, student) -> the caller scores it


def make_prompter(sd: SDComponents, p: PromptParams, cache_dir: Path) -> Prompter:
    """Positive prompts: `text` (kind none: "", fixed), or per-image tags followed by `text` (tagger)."""
    text, tagger = prompt_config(p)
    return Prompter(sd.text_encoder, sd.tokenizer, text, load_tagger(tagger, cache_dir))


# ---------------------------------------------------------------------------------------------------- base model


def pretrain_small_sd(
    sd: SDComponents, p: OsediffParams, seed: int, train_shards: list[Path], prompter: Prompter, neg: torch.Tensor
) -> None:
    """Make the random small SD a usable prior: the VAE learns to reconstruct HQ crops (a random decoder gives
    garbage and OSEDiff keeps it frozen), its latent scale is measured as SD did for 0.18215, then the UNet learns
    ε-prediction on those latents, seeing the negative prompt 10% of the time so CFG has an unconditional branch."""
    t = p.train
    g = torch.Generator().manual_seed(sample_seed(seed, "osediff-base"))
    batches = iter(make_loader(train_shards, t.batch_size, sample_seed(seed, "osediff-base-data"), t.shuffle_buffer,
                               min(t.num_workers, 1)))
    vae, unet = sd.vae, sd.unet
    vae.train().requires_grad_(True)
    opt = torch.optim.AdamW(vae.parameters(), lr=p.base_lr)
    for _ in tqdm(range(p.base_vae_steps), desc="osediff base vae", mininterval=2):
        hq = next(batches)["hq"]
        posterior = vae.encode(hq).latent_dist
        recon = vae.decode(posterior.sample(g)).sample
        loss = F.l1_loss(recon, hq) + F.mse_loss(recon, hq) + 1e-6 * posterior.kl().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        latents = torch.cat([vae.encode(next(batches)["hq"]).latent_dist.mode() for _ in range(4)])
    vae.register_to_config(scaling_factor=float(1.0 / latents.std().clamp_min(1e-3)))

    alphas = sd.scheduler.alphas_cumprod
    unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(unet.parameters(), lr=p.base_lr)
    bar = tqdm(range(p.base_steps), desc="osediff base unet", mininterval=2)
    for _ in bar:
        hq = next(batches)["hq"]
        with torch.no_grad():
            z0 = vae.encode(hq).latent_dist.mode() * vae.config.scaling_factor
        steps = torch.randint(0, NUM_TIMESTEPS, (hq.shape[0],), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        uncond = (torch.rand(hq.shape[0], generator=g) < 0.1)[:, None, None]
        cond = torch.where(uncond, neg, prompter(hq))
        loss = F.mse_loss(unet(add_noise(z0, noise, steps, alphas), steps, encoder_hidden_states=cond).sample, noise)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    unet.eval().requires_grad_(False)


def load_base(p: OsediffParams, seed: int, train_shards: list[Path], work_dir: Path) -> tuple[SDComponents, Path]:
    """The SD checkpoint named by `p.checkpoint`, or the embedded default, pre-trained once per fingerprint."""
    if p.checkpoint is not None:
        folder = materialize(p.checkpoint, work_dir / "cache")
        return load_sd(folder), folder
    keys = (p.small.model_dump_json(), p.base_vae_steps, p.base_steps, p.base_lr, p.train.batch_size,
            p.prompt.model_dump_json(), seed)
    folder = work_dir / "base" / fingerprint(*keys, *train_shards)
    if (folder / "model_index.json").is_file():
        print(f"osediff: reusing base model {folder}", flush=True)
        return load_sd(folder), folder
    sd = build_small_sd(p.small, seed)
    neg = encode_prompts(sd.text_encoder, sd.tokenizer, [p.prompt.negative])
    pretrain_small_sd(sd, p, seed, train_shards, make_prompter(sd, p.prompt, work_dir / "cache"), neg)
    save_sd(sd, folder)
    return sd, folder


# ---------------------------------------------------------------------------------------------------- training


def frozen_real_score(unet: torch.nn.Module, device: torch.device, precision: MixedPrecision) -> torch.nn.Module:
    """The base UNet as the VSD real score; it only runs forward, so on a GPU half precision is enough."""
    real = unet.to(device)
    dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    return real.to(dtype=dtype) if device.type == "cuda" and dtype != torch.float32 else real


def train_osediff(
    p: OsediffParams, seed: int, scale: int, train_shards: list[Path], out_dir: Path, work_dir: Path,
    curves_path: Path, torch_home: Path, validate: Validate | None = None,
) -> OSEDiffStudent:
    """Train the generator and save the student to `out_dir`; `validate` sees it at initialisation ("init") and
    trained ("osediff"). Resumes from `work_dir/<fingerprint>/`."""
    t = p.train
    run = Run("osediff", t, work_dir / fingerprint(p.model_dump_json(), seed, scale, *train_shards), curves_path)
    with run.accelerator.main_process_first():  # the others then load the base model the first one saved
        sd, base_folder = load_base(p, seed, train_shards, work_dir)
    prompter = make_prompter(sd, p.prompt, work_dir / "cache").to(run.device)
    neg = encode_prompts(sd.text_encoder.to(run.device), sd.tokenizer, [p.prompt.negative])
    init_rng = torch.Generator().manual_seed(sample_seed(seed, "osediff-init"))
    gen, fake = make_generator(sd, p.lora, p.vae_sample, init_rng), make_fake_score(sd.unet, p.lora, init_rng)
    gen.set_memory_options(p.gradient_checkpointing, p.vae_tiling)
    if p.gradient_checkpointing:
        fake.enable_gradient_checkpointing()
    real, alphas = frozen_real_score(sd.unet, run.device, t.mixed_precision), sd.scheduler.alphas_cumprod
    lpips_fn = LPIPSLoss(torch_home, "vgg").to(run.device) if p.lambda_lpips > 0 else None
    base = BASE_DIR if p.checkpoint is None else (p.checkpoint if "://" in p.checkpoint else str(base_folder))
    text, tagger = prompt_config(p.prompt)
    config = OSEDiffConfig(base=base, scale=scale, vae_sample=p.vae_sample, prompt=text, tagger=tagger,
                           color_fix=p.color_fix)
    student = OSEDiffStudent(gen.to(run.device), prompter, config, seed=sample_seed(seed, "osediff-val"))
    if validate is not None:
        validate("init", student)  # at test time the tagger reads the LQ (§4.4)

    opt_g = torch.optim.AdamW([q for q in gen.parameters() if q.requires_grad], lr=t.lr, weight_decay=t.weight_decay)
    opt_f = torch.optim.AdamW([q for q in fake.parameters() if q.requires_grad], lr=t.lr, weight_decay=t.weight_decay)
    sched_g, sched_f = warmup_schedule(opt_g, t.warmup_steps), warmup_schedule(opt_f, t.warmup_steps)
    draws = run.draws(sample_seed(seed, "osediff", 0))
    run.restore({"generator": AdapterState(gen), "fake": AdapterState(fake), "opt_g": opt_g, "opt_f": opt_f,
                 "sched_g": sched_g, "sched_f": sched_f}, draws.generator)
    gen_call, fake_call, opt_g, opt_f = run.prepare(gen, fake, opt_g, opt_f)
    real_eps = lambda zt, steps, c: real(zt.to(real.dtype), steps, encoder_hidden_states=c.to(real.dtype)).sample
    fake_eps = lambda zt, steps, c: fake_call(zt, steps, encoder_hidden_states=c).sample

    batches = run.batches(train_shards, seed)
    for step in run.steps():
        gen_call.train()
        fake_call.train()
        now = dict.fromkeys(["loss", "l2", "lpips", "vsd", "fake"], 0.0)
        z_hats = []  # (detached latent, its prompt embeddings) per micro-batch
        for micro in range(t.grad_accum):  # generator step, accumulated over micro-batches
            batch = next(batches)
            hq, lq = batch["hq"].to(run.device), batch["lq"].to(run.device)
            pos = prompter(hq)  # in training the tagger reads the HQ crop (§4.4)
            with run.micro(micro, [gen_call]):
                hq_hat, z_hat = gen_call(upsample(lq, scale), pos, draws)
                vsd = (vsd_loss(z_hat, real_eps, fake_eps, pos, neg, alphas, draws, p.cfg_scale, p.t_min, p.t_max)
                       if p.lambda_vsd > 0 else z_hat.new_zeros(()))
                loss, parts = generator_loss(hq_hat, hq, vsd, lpips_fn, p.lambda_l2, p.lambda_lpips, p.lambda_vsd)
                run.backward(loss / t.grad_accum)
            z_hats.append((z_hat.detach(), pos))
            for k, v in {"loss": loss, **parts}.items():
                now[k] += v.item() / t.grad_accum
        run.update(opt_g, sched_g, [q for q in gen.parameters() if q.requires_grad])
        for micro, (z_hat, pos) in enumerate(z_hats):  # then the fake score's step on the same (detached) latents
            with run.micro(micro, [fake_call]):
                loss_fake = fake_score_loss(z_hat, fake_eps, pos, alphas, draws)
                run.backward(loss_fake / t.grad_accum)
            now["fake"] += loss_fake.item() / t.grad_accum
        run.update(opt_f, sched_f, [q for q in fake.parameters() if q.requires_grad])
        run.end_step(step, now)

    if validate is not None:
        validate("osediff", student)
    if run.is_main:
        student.to("cpu").save_pretrained(out_dir, base_folder if p.checkpoint is None else None)
    return student
