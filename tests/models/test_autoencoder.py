"""Pixel-unshuffle is lossless; the KL wrapper is exactly diffusers' AutoencoderKL with the config's scaling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr.models.autoencoder import Autoencoder, KLAutoencoder, PixelUnshuffle

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def test_pixel_unshuffle_round_trips_exactly() -> None:
    ae = PixelUnshuffle(factor=4)
    assert isinstance(ae, Autoencoder) and ae.factor == 4 and ae.channels == 48
    assert list(ae.parameters()) == [] and list(ae.buffers()) == []
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0)) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (2, 48, 4, 6)
    assert torch.equal(ae.decode(z), x)
    # Channel c*16 + i*4 + j of the latent is pixel (4h + i, 4w + j) of colour c.
    assert z[1, 2 * 16 + 1 * 4 + 3, 2, 5] == x[1, 2, 4 * 2 + 1, 4 * 5 + 3]


def test_pixel_unshuffle_rejects_bad_sizes() -> None:
    ae = PixelUnshuffle(factor=4)
    with pytest.raises(ValueError, match=r"\(18, 16\) is not a multiple of factor 4"):
        ae.encode(torch.zeros(1, 3, 18, 16))
    with pytest.raises(ValueError, match="expected \\(B, 48, h, w\\)"):
        ae.decode(torch.zeros(1, 12, 4, 4))


@pytest.fixture(scope="module")
def kl_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
        scaling_factor=0.5,
    )
    folder = tmp_path_factory.mktemp("vae")
    vae.save_pretrained(folder)
    return folder


def test_kl_autoencoder_matches_diffusers(kl_folder: Path) -> None:
    from diffusers import AutoencoderKL

    ae = KLAutoencoder.from_folder(kl_folder)
    reference = AutoencoderKL.from_pretrained(kl_folder).eval()
    assert isinstance(ae, Autoencoder) and ae.factor == 2 and ae.channels == 4 and ae.scaling_factor == 0.5
    assert not any(p.requires_grad for p in ae.parameters())
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        z = ae.encode(x)
        mode = reference.encode(x).latent_dist.mode()
        assert z.shape == (2, 4, 8, 8)
        torch.testing.assert_close(z, mode * 0.5)
        image = ae.decode(z)
        assert image.shape == (2, 3, 16, 16)
        torch.testing.assert_close(image, reference.decode(mode).sample)


def test_kl_autoencoder_stays_in_eval_and_passes_gradients(kl_folder: Path) -> None:
    ae = KLAutoencoder.from_folder(kl_folder)
    torch.nn.Sequential(ae).train()  # a parent's .train() must not unfreeze the first stage
    assert not ae.training and not ae.vae.training
    z = torch.zeros(1, 4, 8, 8, requires_grad=True)
    ae.decode(z).square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_kl_autoencoder_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no config.json"):
        KLAutoencoder.from_folder(tmp_path / "nope")
