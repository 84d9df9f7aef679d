"""Typed, symmetric model folders: what save_pretrained writes, from_pretrained (and the one loader) reads back,
for every autoencoder kind, and the official-weights import at an input the imported network accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scripts.stand_ins import official_unet_dict, randomize
from sr.config import SwinUNetParams, TeacherParams, VQParams
from sr.models.autoencoder import PixelUnshuffle, PixelUnshuffleRefine
from sr.models.loader import load_model
from sr.models.resshift import ResShiftModel
from sr.models.resshift_swin import ResShiftSwinUNet
from sr.models.srvgg import SRVGGConfig, SRVGGModel
from sr.models.vq_f4 import VQF4
from tests.models.test_official_import import REFERENCE
from tests.pipeline_fixtures import default_params

TINY_SWIN = SwinUNetParams(**REFERENCE["unet"]["config"])  # size_multiple 16: an 8x8 latent does not fit it
TINY_VQ = VQParams(ch=32, n_embed=64, ch_mult=[1, 2, 4], num_res_blocks=1)  # f4, like the official one


def _teacher_params(**update) -> TeacherParams:
    p = default_params().teacher
    return p.model_copy(update={"diffusion": p.diffusion.model_copy(update={"steps": 4}), **update})


def _same_outputs(a: ResShiftModel, b: ResShiftModel, lq_side: int) -> None:
    lq = torch.rand(1, 3, lq_side, lq_side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    side = lq_side * a.scale // a.autoencoder.factor
    noise = torch.randn(1, a.config.latent_channels, side, side, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a.upscale(lq, noise), b.upscale(lq, noise), rtol=0, atol=0)


@pytest.fixture(scope="module")
def official_files(tmp_path_factory) -> tuple[Path, Path]:
    """A DDP `module.`-prefixed EMA .pth of a tiny UNetModelSwin and a bare-state_dict VQ-f4 .pth."""
    root = tmp_path_factory.mktemp("official")
    torch.save(official_unet_dict(randomize(ResShiftSwinUNet(TINY_SWIN), seed=5)), root / "resshift.pth")
    vq = VQF4(embed_dim=3, n_embed=64, ch=32, ch_mult=(1, 2, 4), num_res_blocks=1, z_channels=3)
    torch.save(randomize(vq, seed=6).state_dict(), root / "vq_f4.pth")
    return root / "resshift.pth", root / "vq_f4.pth"


def test_official_import_probes_at_the_networks_own_size_multiple(official_files, tmp_path):
    unet, vq = official_files
    p = _teacher_params(checkpoint=str(unet), arch="resshift_swin", swin=TINY_SWIN,
                        autoencoder=default_params().teacher.autoencoder.model_copy(
                            update={"kind": "vq_f4", "checkpoint": str(vq), "vq": TINY_VQ}))
    model = ResShiftModel.from_official(p, 4, tmp_path / "cache")
    assert model.size_multiple == 16 and model.config.source == str(unet)
    model.save_pretrained(tmp_path / "teacher")
    config = json.loads((tmp_path / "teacher/config.json").read_text())
    assert config["model_type"] == "resshift" and config["vq"]["ch"] == 32 and config["unet"] is None
    assert sorted(p.name for p in (tmp_path / "teacher").iterdir()) == ["autoencoder.safetensors", "config.json",
                                                                       "model.safetensors"]
    _same_outputs(model, load_model(tmp_path / "teacher"), lq_side=16)


def test_kl_teacher_folder_round_trips(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        block_out_channels=(8, 8, 8), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                        sample_size=32, scaling_factor=0.5)
    vae.save_pretrained(tmp_path / "vae")
    p = _teacher_params(autoencoder=default_params().teacher.autoencoder.model_copy(
        update={"kind": "kl", "checkpoint": str(tmp_path / "vae")}))
    torch.manual_seed(1)
    model = ResShiftModel.build(p, 4, tmp_path / "cache").eval()
    model.save_pretrained(tmp_path / "teacher")
    assert (tmp_path / "teacher/autoencoder/config.json").is_file()  # what from_pretrained reads back
    loaded = ResShiftModel.from_pretrained(tmp_path / "teacher")
    assert loaded.config == model.config and loaded.autoencoder.scaling_factor == 0.5
    _same_outputs(model, loaded, lq_side=8)


def test_pixel_unshuffle_folder_round_trips_and_the_loader_dispatches(tmp_path):
    torch.manual_seed(0)
    model = ResShiftModel.build(_teacher_params(), 4, tmp_path, inference_steps=1, recipe="tadsr").eval()
    model.save_pretrained(tmp_path / "student")
    assert sorted(p.name for p in (tmp_path / "student").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(tmp_path / "student")
    assert isinstance(loaded, ResShiftModel) and loaded.config.inference_steps == 1 and loaded.size_multiple == 2
    assert loaded.schedule().steps == 1 and loaded.schedule(4) is loaded.diffusion
    _same_outputs(model, loaded, lq_side=8)


def test_folders_of_unknown_type_or_without_config_fail_in_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^.*empty: not a model folder \(no config.json\)$"):
        load_model(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd/config.json").write_text('{"arch": "unet"}')  # a folder of an older version
    with pytest.raises(ValueError, match=r"odd/config.json: model_type None is not one of resshift, osediff"):
        load_model(tmp_path / "odd")


def test_refine_decoder_sees_each_pixels_place_in_its_cell():
    phase = PixelUnshuffleRefine(factor=4).phase_map(torch.zeros(2, 48, 3, 5))
    assert phase.shape == (2, 8, 12, 20)
    rows, cols = torch.meshgrid(torch.arange(12), torch.arange(20), indexing="ij")
    for k in range(4):
        assert torch.equal(phase[:, k], (rows % 4 == k).float().expand(2, -1, -1))
        assert torch.equal(phase[:, 4 + k], (cols % 4 == k).float().expand(2, -1, -1))


@pytest.mark.parametrize("phase", [True, False])  # False: a folder written before the decoder saw the phase
def test_refine_decoder_starts_as_pixel_shuffle_and_its_folder_round_trips(tmp_path, phase):
    torch.manual_seed(0)
    z = torch.randn(2, 48, 5, 6)
    refine = PixelUnshuffleRefine(factor=4, phase=phase)
    assert refine.refine[0].in_channels == (11 if phase else 3)
    assert torch.equal(refine.decode(z), PixelUnshuffle(factor=4).decode(z))  # zero-initialised last layer
    torch.nn.init.normal_(refine.refine[-1].weight, std=0.1)  # as if trained
    model = ResShiftModel.build(_teacher_params(), 4, tmp_path, inference_steps=1, recipe="sinsr").eval()
    model.autoencoder = refine
    model.config = model.config.model_copy(update={"autoencoder": "pixel_unshuffle_refine"})
    model.save_pretrained(tmp_path / "student")
    assert sorted(p.name for p in (tmp_path / "student").iterdir()) == [
        "config.json", "decoder.safetensors", "model.safetensors"]
    loaded = load_model(tmp_path / "student")
    assert isinstance(loaded.autoencoder, PixelUnshuffleRefine) and loaded.autoencoder.phase == phase
    assert torch.equal(loaded.autoencoder.decode(z), refine.decode(z))
    _same_outputs(model, loaded, lq_side=8)


def test_srvgg_baseline_folder_round_trips_through_the_loader(tmp_path):
    torch.manual_seed(0)
    model = SRVGGModel.build(SRVGGConfig(scale=4, num_feat=8, num_conv=2))
    model.save_pretrained(tmp_path / "baseline")
    loaded = load_model(tmp_path / "baseline")
    assert isinstance(loaded, SRVGGModel) and loaded.config == model.config
    lq = torch.rand(1, 3, 6, 7) * 2 - 1
    out = loaded(lq)
    assert out.shape == (1, 3, 24, 28) and out.abs().max() <= 1
    torch.testing.assert_close(out, model.eval()(lq), rtol=0, atol=0)
