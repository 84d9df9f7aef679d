"""Discriminator output shapes per level, time awareness, zero-init start, and the downsamplers' shapes."""

import pytest
import torch

from sr.models.discriminators import LatentDiscriminator, TimeAwareDiscriminator, circular_pad, feature_channels
from sr.models.downsampler import build_downsampler
from sr.models.unet import UNet
from tests.pipeline_fixtures import default_params

UNET = default_params().teacher.unet.model_copy(
    update={"model_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1, "attention_levels": [],
            "num_head_channels": 8})


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def test_time_aware_heads_on_teacher_features_one_logit_block_per_level():
    torch.manual_seed(0)
    teacher = UNet(12, 3, UNET).requires_grad_(False)
    x, lq = torch.randn(2, 12, 8, 8), torch.randn(2, 3, 8, 8)
    widths = feature_channels(teacher.encoder_features, x, lq)
    assert widths == [8, 16, 16]  # level 0 (after downsample), level 1, middle
    disc = TimeAwareDiscriminator(widths, embed_dim=8, c_dim=5)
    t = torch.tensor([0, 13])
    logits = disc(teacher.encoder_features(x, t, lq), t)
    assert [tuple(l.shape) for l in logits] == [(2, 5 * 16), (2, 5 * 16), (2, 5 * 16)]


def test_zero_init_conv_makes_a_fresh_discriminator_blind_then_time_changes_its_output():
    torch.manual_seed(0)
    disc = TimeAwareDiscriminator([8], embed_dim=8, c_dim=3)
    features = [torch.randn(2, 8, 4, 4)]
    a = disc(features, torch.tensor([0, 0]))[0]
    b = disc([torch.randn(2, 8, 4, 4)], torch.tensor([0, 0]))[0]
    torch.testing.assert_close(a, b)  # zero conv: inputs do not matter yet
    with torch.no_grad():
        disc.levels[0].conv.weight.normal_()
    c = disc(features, torch.tensor([0, 9]))[0]
    d = disc(features, torch.tensor([9, 0]))[0]
    assert not torch.allclose(c[0], d[0])


def test_mismatched_feature_count_is_a_clear_error():
    disc = TimeAwareDiscriminator([8, 8], embed_dim=8)
    with pytest.raises(ValueError, match="got 3 feature maps, built for 2"):
        disc([torch.randn(1, 8, 2, 2)] * 3, torch.tensor([0]))


def test_latent_discriminator_levels_and_gradient_to_its_input():
    disc = LatentDiscriminator(in_channels=12, channels=8, levels=3, c_dim=4)
    z = torch.randn(2, 12, 8, 8, requires_grad=True)
    logits = disc(z)
    assert [tuple(l.shape) for l in logits] == [(2, 4 * 64), (2, 4 * 16), (2, 4 * 4)]
    torch.cat(logits, 1).mean().backward()
    assert z.grad.abs().sum() > 0


def test_circular_pad_wraps_even_when_shorter_than_the_pad():
    x = torch.tensor([[[1.0, 2.0]]])
    assert circular_pad(x, 3).tolist() == [[[2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0]]]
    y = torch.arange(5.0)[None, None]
    torch.testing.assert_close(circular_pad(y, 2), torch.nn.functional.pad(y, (2, 2), mode="circular"))


@pytest.mark.parametrize("kind", ["diffusion", "conv"])
def test_downsamplers_map_a_latent_and_noise_to_a_latent(kind):
    g = build_downsampler(kind, "unet", UNET, None, latent_channels=12)
    z = torch.randn(2, 12, 8, 8, requires_grad=True)
    out = g(z, torch.randn(2, 12, 8, 8))
    assert out.shape == z.shape
    out.sum().backward()
    assert z.grad.abs().sum() > 0
