"""OSEDiff generator, fake score net and SD checkpoint I/O on the small SD-shaped model."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import DDPMScheduler
from peft.tuners.lora import LoraLayer
from pydantic import ValidationError

from sr.config import OsediffParams, PromptParams, SmallSDParams
from sr.diffusion.sd import add_noise, one_step_x0, scaled_linear_alphas_cumprod
from sr.eval.timing import count_params
from sr.losses.vsd import fake_score_loss
from sr.models.osediff import MODULES_FILE, load_generator, make_fake_score, make_generator, merge
from sr.models.sd import build_small_sd, encode_prompts, load_sd, save_sd
from tests.pipeline_fixtures import default_params

LORA = default_params().osediff.lora  # rank 4, alpha 8: OSEDiff's
# params.yaml's small SD with a 4-level VAE: x8 like SD's, so a 32 px image is a 4x4 latent
SMALL = default_params().osediff.small.model_copy(update={"vae_channels": [32, 32, 64, 64]})


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def sd():
    return build_small_sd(SMALL, seed=0)


@pytest.fixture(scope="module")
def embeds(sd):
    return encode_prompts(sd.text_encoder, sd.tokenizer, ["a photo of a cat"])


def _lq(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _randomize_lora_b(model: torch.nn.Module, seed: int = 5) -> None:
    """B = 0 at init makes LoRA an identity and zeroes A's gradient; tests need a non-trivial adapter."""
    g = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.copy_(torch.randn(param.shape, generator=g) * 0.05)


def _lora_layers(model: torch.nn.Module) -> list[LoraLayer]:
    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def test_one_step_matches_diffusers_scheduler(sd):
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False)
    # the reference's set_timesteps(1) + step(t=999); diffusers 0.42 only finds 999 in an explicit schedule
    scheduler.set_timesteps(timesteps=[999])
    g = torch.Generator().manual_seed(0)
    z, eps = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    out = scheduler.step(eps, 999, z, generator=g)
    ours = one_step_x0(z, eps, scheduler.alphas_cumprod)
    torch.testing.assert_close(ours, out.pred_original_sample, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(ours, out.prev_sample, rtol=1e-5, atol=1e-4)  # prev abar = 1: the step is x0
    abar = scaled_linear_alphas_cumprod()
    torch.testing.assert_close(abar.float(), scheduler.alphas_cumprod, rtol=1e-5, atol=1e-7)
    assert float(abar[999]) == pytest.approx(0.0046601, abs=1e-7)  # docs/methods.md §4.2
    t = torch.tensor([3, 700])
    torch.testing.assert_close(add_noise(z, eps, t, abar), scheduler.add_noise(z, eps, t), rtol=1e-5, atol=1e-5)


def test_fresh_generator_equals_base_model_one_step(sd, embeds):
    """LoRA B = 0 at init, so the generator is exactly SD's encoder -> UNet at 999 -> scheduler x0 -> decoder."""
    gen = make_generator(sd, LORA, "mode", torch.Generator().manual_seed(0))
    lq = _lq()
    with torch.no_grad():
        hq_hat, z_hat = gen(lq, embeds)
        z = sd.vae.encode(lq).latent_dist.mode() * sd.vae.config.scaling_factor
        eps = sd.unet(z, torch.tensor([999, 999]), encoder_hidden_states=embeds.expand(2, -1, -1)).sample
        x0 = sd.scheduler.step(eps, 999, z).pred_original_sample
        hq = sd.vae.decode(x0 / sd.vae.config.scaling_factor).sample.clamp(-1, 1)
    torch.testing.assert_close(z_hat, x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(hq_hat, hq, rtol=1e-4, atol=1e-4)
    assert hq_hat.shape == (2, 3, 32, 32) and z_hat.shape == (2, 4, 4, 4)
    assert not _lora_layers(sd.unet) and not _lora_layers(sd.vae), "the frozen SD model must stay un-adapted"


def test_generator_trains_only_lora_and_conv_in(sd, embeds):
    gen = make_generator(sd, LORA, "sample", torch.Generator().manual_seed(0))
    _randomize_lora_b(gen)
    vae_modules = gen.modules_adapted["vae"]["default_encoder"]
    assert "quant_conv" in vae_modules and "post_quant_conv" not in vae_modules
    assert all(m.startswith("encoder.") or m == "quant_conv" for m in vae_modules)
    assert set(gen.modules_adapted["unet"]) == {"default_encoder", "default_decoder", "default_others"}
    hq_hat, z_hat = gen(_lq(), embeds, torch.Generator().manual_seed(2))
    (hq_hat.square().mean() + z_hat.square().mean()).backward()
    with_grad = {n for n, p in gen.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    trainable = {n for n, p in gen.named_parameters() if p.requires_grad}
    expected = {n for n in trainable if "lora_" in n or n.startswith("unet.conv_in.")}
    assert trainable == expected
    assert {"unet.conv_in.base_layer.weight", "unet.conv_in.base_layer.bias"} <= trainable
    assert with_grad == trainable, f"no gradient: {sorted(trainable - with_grad)[:3]}"
    assert all(p.grad is None for n, p in gen.named_parameters() if n not in trainable)
    assert not any("decoder" in n or "post_quant_conv" in n for n in trainable if n.startswith("vae."))


def test_vae_sample_draws_from_generator_and_mode_does_not(sd, embeds):
    gen = make_generator(sd, LORA, "sample", torch.Generator().manual_seed(0))
    lq = _lq()
    with torch.no_grad():
        a = gen(lq, embeds, torch.Generator().manual_seed(3))[1]
        b = gen(lq, embeds, torch.Generator().manual_seed(3))[1]
        c = gen(lq, embeds, torch.Generator().manual_seed(4))[1]
        gen.vae_sample = "mode"
        d = gen(lq, embeds, torch.Generator().manual_seed(3))[1]
        e = gen(lq, embeds, torch.Generator().manual_seed(4))[1]
    assert torch.equal(a, b) and not torch.allclose(a, c) and torch.equal(d, e)


def test_fake_score_trains_every_adapter(sd, embeds):
    fake = make_fake_score(sd.unet, LORA, torch.Generator().manual_seed(0))
    _randomize_lora_b(fake)
    assert all(len(layer.active_adapters) == 1 for layer in _lora_layers(fake))
    z_hat = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    loss = fake_score_loss(
        z_hat,
        lambda zt, t, c: fake(zt, t, encoder_hidden_states=c).sample,
        embeds,
        sd.scheduler.alphas_cumprod,
        torch.Generator().manual_seed(2),
    )
    loss.backward()
    for adapter in ("default_encoder", "default_decoder", "default_others"):
        params = [(n, p) for n, p in fake.named_parameters() if f".{adapter}." in n]
        assert params, adapter
        dead = [n for n, p in params if p.grad is None or p.grad.abs().sum() == 0]
        assert not dead, f"{adapter}: no gradient for {dead[:3]}"
    assert all(p.grad is None for n, p in fake.named_parameters() if "lora_" not in n)


def test_save_load_and_merge_give_identical_outputs(sd, embeds, tmp_path):
    gen = make_generator(sd, LORA, "sample", torch.Generator().manual_seed(0))
    _randomize_lora_b(gen)
    with torch.no_grad():
        gen.unet.conv_in.base_layer.weight.add_(0.01)  # conv_in is fully trained: its change must be saved too
    gen.save(tmp_path / "student")
    meta = json.loads((tmp_path / "student" / MODULES_FILE).read_text())
    assert meta["rank"] == 4 and meta["modules"]["unet"]["default_encoder"][0] == "conv_in"
    loaded = load_generator(sd, tmp_path / "student", "sample")
    merged = merge(gen)
    lq = _lq()
    with torch.no_grad():
        ref = gen(lq, embeds, torch.Generator().manual_seed(7))
        again = loaded(lq, embeds, torch.Generator().manual_seed(7))
        fused = merged(lq, embeds, torch.Generator().manual_seed(7))
    for a, b in zip(ref, again):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(ref, fused):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert not _lora_layers(merged) and count_params([merged]) == count_params([sd.vae]) + count_params([sd.unet])
    assert sum(p.numel() for p in merged.parameters() if p.requires_grad) == 0
    with torch.no_grad():  # the adapters must matter, or the comparisons above prove nothing
        fresh = make_generator(sd, LORA, "sample", torch.Generator().manual_seed(0))(
            lq, embeds, torch.Generator().manual_seed(7)
        )
    assert (fresh[1] - ref[1]).abs().max() > 1e-2


def test_load_generator_rejects_mismatched_files(sd, tmp_path):
    gen = make_generator(sd, LORA, "mode", torch.Generator().manual_seed(0))
    gen.save(tmp_path / "student")
    meta_path = tmp_path / "student" / MODULES_FILE
    meta = json.loads(meta_path.read_text())
    meta["modules"]["unet"]["default_others"].pop()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="lora.safetensors: does not match"):
        load_generator(sd, tmp_path / "student", "mode")
    with pytest.raises(FileNotFoundError, match="missing lora.safetensors"):
        load_generator(sd, tmp_path, "mode")


def test_load_sd_round_trips_a_saved_small_model(sd, tmp_path):
    save_sd(sd, tmp_path / "sd")
    save_sd(sd, tmp_path / "sd")  # overwriting an existing folder goes through the same atomic rename
    loaded = load_sd(tmp_path / "sd")
    for part in ("vae", "unet", "text_encoder"):
        ours, theirs = getattr(sd, part).state_dict(), getattr(loaded, part).state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), part
    text = ["a red car, sharp"]
    torch.testing.assert_close(
        encode_prompts(loaded.text_encoder, loaded.tokenizer, text),
        encode_prompts(sd.text_encoder, sd.tokenizer, text),
        rtol=0,
        atol=0,
    )
    assert torch.equal(loaded.scheduler.alphas_cumprod, sd.scheduler.alphas_cumprod)
    assert sorted(p.name for p in (tmp_path / "sd").iterdir()) == sorted(
        ["model_index.json", "scheduler", "text_encoder", "tokenizer", "unet", "vae"]
    )
    with pytest.raises(FileNotFoundError, match="missing 'vae/'"):
        load_sd(tmp_path)


def test_params_validation():
    osediff = default_params().osediff.model_dump()
    with pytest.raises(ValidationError, match="t_min < t_max"):
        OsediffParams(**{**osediff, "t_min": 500, "t_max": 400})
    with pytest.raises(ValidationError, match="tagger_path"):
        PromptParams(kind="tagger", text="")
    with pytest.raises(ValidationError, match="norm_num_groups"):
        SmallSDParams(**{**osediff["small"], "vae_channels": [30, 32, 64, 64]})


def test_gradient_checkpointing_keeps_gradients(sd, embeds):
    grads = []
    for checkpointing in (False, True):
        gen = make_generator(sd, LORA, "mode", torch.Generator().manual_seed(0)).train()
        _randomize_lora_b(gen)
        gen.set_memory_options(gradient_checkpointing=checkpointing, vae_tiling=False)
        assert gen.unet.is_gradient_checkpointing == checkpointing
        hq_hat, z_hat = gen(_lq(), embeds)
        (hq_hat.square().mean() + z_hat.square().mean()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in gen.parameters() if p.requires_grad]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)
