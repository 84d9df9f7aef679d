"""OSEDiff training (METHODS.md §4.3, §4.5): LoRA on SD's VAE encoder and UNet, one step at t=999.

Each iteration: a generator step on  λ_l2·MSE + λ_lpips·LPIPS + λ_vsd·VSD  (real score = the frozen base UNet with
CFG against the negative prompt, fake score = a LoRA'd copy), then the fake score's ε-MSE step on the detached ẑ.
The base model is an SD-format checkpoint (path or s3://) or, for the embedded default, a small SD-shaped model
pre-trained here on the train shards (VAE as an autoencoder, then the UNet's ε-prediction) so it is a real prior.
"""

from __future__ import annotations

import json
import shutil
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sr.config import OsediffParams, PromptParams
from sr.data.shards import iter_samples, make_loader, sample_seed
from sr.diffusion.sd import NUM_TIMESTEPS, add_noise
from sr.losses.vsd import fake_score_loss, generator_loss, vsd_loss
from sr.models.osediff import (
    OSEDiffGenerator,
    SDComponents,
    adapter_state,
    build_small_sd,
    encode_prompts,
    load_generator,
    load_sd,
    make_fake_score,
    make_generator,
    merge,
    save_sd,
)
from sr.models.tagger import Prompter, load_tagger
from sr.storage import atomic_dir, atomic_write_text, materialize
from sr.train.checkpoint import fingerprint, load_latest, rng_state, save_checkpoint, set_rng_state
from sr.train.curves import Curves
from sr.train.setup import make_accelerator, warmup_schedule

CONFIG_FILE = "config.json"
BASE_DIR = "base"  # the embedded default's base model, inside the student folder (there is no hub to name)


def upsample(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic ×scale, clamped to [-1, 1]: the generator's input."""
    return F.interpolate(lq, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def make_prompter(sd: SDComponents, p: PromptParams, cache_dir: Path) -> Prompter:
    """Positive prompts: "" (kind none), `text` (fixed), or per-image tags followed by `text` (tagger)."""
    return Prompter(sd.text_encoder, sd.tokenizer, "" if p.kind == "none" else p.text, load_tagger(p, cache_dir))


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


@torch.no_grad()
def evaluate(
    upscale, val_shards: list[Path], scale: int, torch_home: Path, batch_size: int = 16
) -> dict[str, float]:
    """Mean PSNR(Y) (crop_border = scale) and LPIPS of `upscale(lq) -> hq` in [-1, 1] on the val shards."""
    from sr.eval.metrics import Metrics

    metrics = Metrics(torch_home)
    samples = list(iter_samples(val_shards))
    if not samples:
        raise FileNotFoundError(f"no val samples in {[str(s) for s in val_shards]}")
    psnr = lpips = 0.0
    for i in range(0, len(samples), batch_size):
        chunk = samples[i : i + batch_size]
        lq, hq01 = torch.stack([s["lq"] for s in chunk]), (torch.stack([s["hq"] for s in chunk]) + 1) / 2
        out01 = ((upscale(lq).float() + 1) / 2).clamp(0, 1)
        psnr += metrics.psnr_y(out01, hq01, crop_border=scale).sum().item()
        lpips += metrics.lpips(out01, hq01).sum().item()
    return {"psnr_y": psnr / len(samples), "lpips": lpips / len(samples), "samples": len(samples)}


def train_osediff(
    p: OsediffParams, seed: int, scale: int, train_shards: list[Path], val_shards: list[Path], out_dir: Path,
    work_dir: Path, curves_path: Path, metrics_path: Path, torch_home: Path | None = None,
) -> OSEDiffGenerator:
    """Train the generator; write the student folder, the val metrics (init / trained / bicubic) and the curves.
    Checkpoints go to `work_dir/<fingerprint>/` so a changed config never resumes a stale run."""
    from sr.eval.weights import default_torch_home
    from sr.losses.perceptual import LPIPSLoss

    torch_home = Path(torch_home) if torch_home is not None else default_torch_home()
    t = p.train
    accelerator = make_accelerator(t.mixed_precision)
    device = accelerator.device
    sd, base_folder = load_base(p, seed, train_shards, work_dir)
    prompter = make_prompter(sd, p.prompt, work_dir / "cache").to(device)
    neg = encode_prompts(sd.text_encoder.to(device), sd.tokenizer, [p.prompt.negative])

    init_rng = torch.Generator().manual_seed(sample_seed(seed, "osediff-init"))
    gen = make_generator(sd, p.lora, p.vae_sample, init_rng)
    fake = make_fake_score(sd.unet, p.lora, init_rng)
    gen.set_memory_options(p.gradient_checkpointing, p.vae_tiling)
    if p.gradient_checkpointing:
        fake.enable_gradient_checkpointing()
    weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[p.mixed_precision]
    real = sd.unet.to(device)
    if device.type == "cuda" and weight_dtype != torch.float32:
        real = real.to(dtype=weight_dtype)  # the frozen real score only runs forward: half precision is enough
    alphas = sd.scheduler.alphas_cumprod
    lpips_fn = LPIPSLoss(torch_home, "vgg").to(device) if p.lambda_lpips > 0 else None

    def student(g: OSEDiffGenerator):
        def upscale(lq: torch.Tensor) -> torch.Tensor:
            g.eval()
            rng = torch.Generator(device=device).manual_seed(sample_seed(seed, "osediff-val"))
            lq_up = upsample(lq.to(device), scale)
            return g(lq_up, prompter(lq_up), rng)[0].cpu()  # at test time the tagger reads the LQ (§4.4)
        return upscale

    bicubic = evaluate(lambda lq: upsample(lq, scale), val_shards, scale, torch_home)
    initial = evaluate(student(gen.to(device)), val_shards, scale, torch_home)

    opt_g = torch.optim.AdamW([q for q in gen.parameters() if q.requires_grad], lr=t.lr, weight_decay=t.weight_decay)
    opt_f = torch.optim.AdamW([q for q in fake.parameters() if q.requires_grad], lr=t.lr, weight_decay=t.weight_decay)
    sched_g, sched_f = warmup_schedule(opt_g, t.warmup_steps), warmup_schedule(opt_f, t.warmup_steps)
    rng = torch.Generator().manual_seed(sample_seed(seed, "osediff", accelerator.process_index))
    ckpt_dir = work_dir / fingerprint(p.model_dump_json(), seed, scale, *train_shards)
    start = 0
    state = load_latest(ckpt_dir)
    if state is not None:
        start = state["step"]
        gen.load_state_dict(state["generator"], strict=False)
        fake.load_state_dict(state["fake"], strict=False)
        opt_g.load_state_dict(state["opt_g"])
        opt_f.load_state_dict(state["opt_f"])
        sched_g.load_state_dict(state["sched_g"])
        sched_f.load_state_dict(state["sched_f"])
        set_rng_state(state["rng"], rng)
        print(f"osediff: resumed from checkpoint at step {start} ({ckpt_dir})", flush=True)
    gen, fake, opt_g, opt_f = accelerator.prepare(gen, fake, opt_g, opt_f)

    def real_eps(zt: torch.Tensor, steps: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return real(zt.to(real.dtype), steps, encoder_hidden_states=c.to(real.dtype)).sample

    def fake_eps(zt: torch.Tensor, steps: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return fake(zt, steps, encoder_hidden_states=c).sample

    batches = iter(make_loader(train_shards, t.batch_size, seed, t.shuffle_buffer, t.num_workers,
                               accelerator.process_index, accelerator.num_processes, skip_batches=start * t.grad_accum))
    columns = ["loss", "l2", "lpips", "vsd", "fake"]
    curves = Curves(curves_path, columns, resume_step=start)
    running: dict[str, float] = {}
    bar = tqdm(range(start, t.steps), initial=start, total=t.steps, desc="osediff", mininterval=2,
               disable=not accelerator.is_main_process)
    for step in bar:
        gen.train()
        fake.train()
        now = dict.fromkeys(columns, 0.0)
        z_hats = []  # (detached latent, its prompt embeddings) per micro-batch
        for micro in range(t.grad_accum):  # generator step, accumulated over micro-batches
            batch = next(batches)
            hq, lq = batch["hq"].to(device), batch["lq"].to(device)
            pos = prompter(hq)  # in training the tagger reads the HQ crop (§4.4)
            sync = nullcontext() if micro == t.grad_accum - 1 else accelerator.no_sync(gen)
            with sync, accelerator.autocast():
                hq_hat, z_hat = gen(upsample(lq, scale), pos, rng)
                vsd = (vsd_loss(z_hat, real_eps, fake_eps, pos, neg, alphas, rng, p.cfg_scale, p.t_min, p.t_max)
                       if p.lambda_vsd > 0 else z_hat.new_zeros(()))
                loss, parts = generator_loss(hq_hat, hq, vsd, lpips_fn, p.lambda_l2, p.lambda_lpips, p.lambda_vsd)
                accelerator.backward(loss / t.grad_accum)
            z_hats.append((z_hat.detach(), pos))
            for k, v in {"loss": loss, **parts}.items():
                now[k] += v.item() / t.grad_accum
        if t.grad_clip:
            accelerator.clip_grad_norm_([q for q in gen.parameters() if q.requires_grad], t.grad_clip)
        opt_g.step()
        sched_g.step()
        opt_g.zero_grad(set_to_none=True)

        for micro, (z_hat, pos) in enumerate(z_hats):  # then the fake score's step on the same (detached) latents
            sync = nullcontext() if micro == t.grad_accum - 1 else accelerator.no_sync(fake)
            with sync, accelerator.autocast():
                loss_fake = fake_score_loss(z_hat, fake_eps, pos, alphas, rng)
                accelerator.backward(loss_fake / t.grad_accum)
            now["fake"] += loss_fake.item() / t.grad_accum
        if t.grad_clip:
            accelerator.clip_grad_norm_([q for q in fake.parameters() if q.requires_grad], t.grad_clip)
        opt_f.step()
        sched_f.step()
        opt_f.zero_grad(set_to_none=True)

        running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in now.items()}
        bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()})
        done = step + 1
        if done % t.log_every == 0 or done == t.steps:
            curves.log(done, **now)
        if accelerator.is_main_process and (done % t.ckpt_every == 0 or done == t.steps):
            curves.flush()  # first: rows past a checkpoint are trimmed on resume, missing rows would stay missing
            save_checkpoint(ckpt_dir, done, {
                "generator": adapter_state(accelerator.unwrap_model(gen)),
                "fake": adapter_state(accelerator.unwrap_model(fake)),
                "opt_g": opt_g.state_dict(), "opt_f": opt_f.state_dict(),
                "sched_g": sched_g.state_dict(), "sched_f": sched_f.state_dict(), "rng": rng_state(rng),
            })
    curves.flush()

    gen = accelerator.unwrap_model(gen)
    trained = evaluate(student(gen), val_shards, scale, torch_home)
    if accelerator.is_main_process:
        base = BASE_DIR if p.checkpoint is None else (p.checkpoint if "://" in p.checkpoint else str(base_folder))
        save_student(gen.cpu(), out_dir, base, base_folder if p.checkpoint is None else None, scale, p)
        metrics = {"steps": t.steps, "val_samples": bicubic["samples"]}
        for name, m in (("bicubic", bicubic), ("init", initial), ("osediff", trained)):
            metrics[f"psnr_y_{name}"], metrics[f"lpips_{name}"] = round(m["psnr_y"], 4), round(m["lpips"], 4)
        atomic_write_text(metrics_path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return gen


# ---------------------------------------------------------------------------------------------------- student I/O


def save_student(
    gen: OSEDiffGenerator, out_dir: Path, base: str, base_folder: Path | None, scale: int, p: OsediffParams
) -> None:
    """`out_dir`: LoRA + conv_in weights, the adapted modules, config.json naming the base model (and, for the
    embedded default, the base itself under base/). Built in a temp sibling and renamed into place."""
    config = {"method": "osediff", "base": base, "scale": scale, "vae_sample": p.vae_sample,
              "prompt": "" if p.prompt.kind == "none" else p.prompt.text, "nfe": 1}
    if p.prompt.kind == "tagger":  # inference tags each upsampled LQ with the same tagger
        config["tagger"] = {"path": p.prompt.tagger_path, "threshold": p.prompt.tagger_threshold,
                            "max_tags": p.prompt.tagger_max_tags}
    with atomic_dir(Path(out_dir)) as tmp:
        gen.save(tmp)
        if base_folder is not None:
            shutil.copytree(base_folder, tmp / BASE_DIR)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


class OSEDiffStudent(torch.nn.Module):
    """lq in [-1, 1] (B,3,h,w) -> hq in [-1, 1] (B,3,h·scale,w·scale) in one step. The VAE posterior draw (when
    the student samples) comes from a generator seeded afresh on every call, so outputs are reproducible."""

    def __init__(self, gen: OSEDiffGenerator, prompter: Prompter, scale: int, seed: int = 0) -> None:
        super().__init__()
        self.gen, self.prompter, self.scale, self.seed, self.nfe = gen.eval(), prompter, scale, seed, 1

    @torch.no_grad()
    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        lq_up = upsample(lq, self.scale)
        h, w = lq_up.shape[-2:]
        pad_h, pad_w = -h % 8, -w % 8  # SD's VAE downsamples ×8 (the small default ×4, which 8 also covers)
        if pad_h or pad_w:
            lq_up = F.pad(lq_up, (0, pad_w, 0, pad_h), mode="reflect")
        rng = torch.Generator(device=lq.device).manual_seed(self.seed)
        return self.gen(lq_up, self.prompter(lq_up), rng)[0][..., :h, :w]


def _read_config(student_dir: Path) -> dict:
    path = Path(student_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{student_dir}: not an OSEDiff student folder (missing {CONFIG_FILE})")
    return json.loads(path.read_text())


def _base_sd(student_dir: Path, config: dict, cache_dir: Path | None) -> SDComponents:
    base = student_dir / BASE_DIR if config["base"] == BASE_DIR else config["base"]
    return load_sd(materialize(str(base), cache_dir or student_dir.parent / ".cache"))


def load_student(student_dir: str | Path, cache_dir: Path | None = None) -> OSEDiffStudent:
    """A student saved by `train_osediff` (LoRA on its base) or by `merge_student` (standalone SD folder)."""
    student_dir = Path(student_dir)
    config = _read_config(student_dir)
    if config.get("merged"):
        sd = load_sd(student_dir)
        gen = OSEDiffGenerator(sd.vae, sd.unet, sd.scheduler.alphas_cumprod, config["vae_sample"],
                               {"vae": {}, "unet": {}}, 0, 0.0)
    else:
        sd = _base_sd(student_dir, config, cache_dir)
        gen = load_generator(sd, student_dir, config["vae_sample"])
    t = config.get("tagger")
    prompt = PromptParams(kind="tagger", tagger_path=t["path"], tagger_threshold=t["threshold"],
                          tagger_max_tags=t["max_tags"]) if t else PromptParams()
    tagger = load_tagger(prompt, cache_dir or student_dir.parent / ".cache")
    prompter = Prompter(sd.text_encoder, sd.tokenizer, config["prompt"], tagger)
    return OSEDiffStudent(gen.requires_grad_(False), prompter, config["scale"])


def merge_student(student_dir: str | Path, out_dir: str | Path, cache_dir: Path | None = None) -> None:
    """Fold the LoRA into the weights: a standalone diffusers SD folder (the generator's VAE and UNet, the base's
    text encoder, tokenizer and scheduler) plus config.json; `load_student` reads it like the unmerged student."""
    student_dir = Path(student_dir)
    config = _read_config(student_dir)
    sd = _base_sd(student_dir, config, cache_dir)
    merged = merge(load_generator(sd, student_dir, config["vae_sample"]))
    save_sd(SDComponents(merged.vae, merged.unet, sd.text_encoder, sd.tokenizer, sd.scheduler), out_dir)
    config = {**config, "merged": True, "base": f"merged from {config['base']}"}
    atomic_write_text(Path(out_dir) / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
