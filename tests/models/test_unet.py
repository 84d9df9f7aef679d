"""The small teacher UNet: shapes, encoder features, gradient flow, conditioning, and that it can learn."""

from __future__ import annotations

import pytest
import torch

from sr.config import UNetParams
from sr.models.embeddings import timestep_embedding
from sr.models.unet import UNet
from tests.pipeline_fixtures import default_params


def unet_params(**update) -> UNetParams:
    """params.yaml's teacher UNet with `update`."""
    return default_params().teacher.unet.model_copy(update=update)


TINY = unet_params(model_channels=16, channel_mult=[1, 2, 2], num_res_blocks=1, attention_levels=[1, 2],
                   num_head_channels=8)  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def inputs(batch: int = 2, latent: int = 12, size: int = 8, lq_size: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, latent, size, size, generator=g)
    t = torch.randint(0, 15, (batch,), generator=g)
    lq = torch.rand(batch, 3, lq_size, lq_size, generator=g) * 2 - 1
    return x, t, lq


def test_timestep_embedding_uses_the_raw_index() -> None:
    emb = timestep_embedding(torch.tensor([0, 3]), 8)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert emb[1, 0].item() == pytest.approx(torch.cos(torch.tensor(3.0)).item())  # frequency 1, no x1000/T rescale


def test_forward_shapes_and_lq_resize() -> None:
    torch.manual_seed(0)  # weight init only
    net = UNet(latent_channels=12, lq_channels=3, p=TINY).eval()
    x, t, lq = inputs()
    assert net(x, t, lq).shape == (2, 12, 8, 8)
    # An lq on a finer or coarser grid than the latent is resized to it.
    assert net(x, t, torch.zeros(2, 3, 32, 32)).shape == (2, 12, 8, 8)
    assert net(x, t, torch.zeros(2, 3, 4, 4)).shape == (2, 12, 8, 8)
    with pytest.raises(ValueError, match="not divisible by 4"):
        net(torch.zeros(1, 12, 6, 6), t[:1], torch.zeros(1, 3, 6, 6))


def test_output_depends_on_t_and_lq() -> None:
    torch.manual_seed(0)
    net = UNet(12, 3, TINY).eval()
    x, t, lq = inputs()
    with torch.no_grad():
        out = net(x, t, lq)
        assert (net(x, t + 1, lq) - out).abs().max() > 1e-4
        assert (net(x, t, -lq) - out).abs().max() > 1e-4
        assert out.std() > 0.05  # the output conv is not zero-initialized


def test_encoder_features_shapes_and_count() -> None:
    torch.manual_seed(0)
    net = UNet(12, 3, TINY)
    x, t, lq = inputs(size=16, lq_size=16)
    features = net.encoder_features(x, t, lq)
    # One map per level (after its downsample) plus the middle block.
    assert [tuple(f.shape) for f in features] == [(2, 16, 8, 8), (2, 32, 4, 4), (2, 32, 4, 4), (2, 32, 4, 4)]


def test_gradient_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    net = UNet(12, 3, TINY)
    x, t, lq = inputs()
    net(x, t, lq).square().mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []
    net.zero_grad()
    x.requires_grad_(True)  # the discriminator's fake features must pass gradients back to the student's latent
    sum(f.square().mean() for f in net.encoder_features(x, t, lq)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    encoder = [name for name, p in net.named_parameters() if name.startswith(("down.", "mid_", "conv_in", "time"))]
    assert all(dict(net.named_parameters())[name].grad is not None for name in encoder)


def test_overfits_one_tiny_batch() -> None:
    torch.manual_seed(0)
    net = UNet(12, 3, unet_params(model_channels=16, channel_mult=[1, 2], num_res_blocks=1, attention_levels=[1],
                                  num_head_channels=8))  # fmt: skip
    x, t, lq = inputs(batch=4)
    target = inputs(batch=4, seed=1)[0]
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss = (net(x, t, lq) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_default_params_shapes() -> None:
    torch.manual_seed(0)
    net = UNet(48, 3, unet_params())
    x, t, lq = inputs(batch=1, latent=48, size=16, lq_size=16)
    assert net(x, t, lq).shape == (1, 48, 16, 16)
    assert 0.5e6 < sum(p.numel() for p in net.parameters()) < 2e6
    assert len(net.encoder_features(x, t, lq)) == 3


def test_bad_attention_level() -> None:
    with pytest.raises(ValueError, match=r"attention_levels \[2\] out of range"):
        UNet(12, 3, unet_params(channel_mult=[1, 2], attention_levels=[2]))


def _naive_windowed(a, x: torch.Tensor) -> torch.Tensor:
    """Attention.forward written out position by position: each window of the grid attends within itself."""
    b, c, h, w = x.shape
    q, k, v = a.qkv(a.norm(x)).chunk(3, 1)
    heads, d = a.heads, c // a.heads
    out = torch.zeros(b, c, h, w)
    for top in range(0, h, a.window):
        for left in range(0, w, a.window):
            cells = [(i, j) for i in range(top, min(h, top + a.window)) for j in range(left, min(w, left + a.window))]
            def gather(t, cells=cells):
                return torch.stack([t[:, :, i, j] for i, j in cells], -1).reshape(b, heads, d, len(cells))
            qs, ks, vs = gather(q), gather(k), gather(v)
            att = torch.softmax(qs.transpose(-1, -2) @ ks / d**0.5, -1) @ vs.transpose(-1, -2)
            flat = att.transpose(-1, -2).reshape(b, c, len(cells))
            for n, (i, j) in enumerate(cells):
                out[:, :, i, j] = flat[:, :, n]
    return x + a.proj(out)


@pytest.mark.parametrize("size", [(10, 12), (9, 23), (16, 16), (4, 3)])
def test_windowed_attention_equals_attention_within_each_window(size) -> None:
    from sr.models.unet import Attention

    torch.manual_seed(0)
    attention = Attention(64, 16, window=4).eval()
    x = torch.randn(2, 64, *size)
    with torch.no_grad():
        torch.testing.assert_close(attention(x), _naive_windowed(attention, x), rtol=0, atol=1e-5)
        # on a grid within one window, the padded, masked tile is global attention (what an exported graph runs)
        if max(size) <= 4:
            qkv = attention.qkv(attention.norm(x))
            torch.testing.assert_close(x + attention.proj(attention._windowed(qkv, *size)), attention(x), atol=1e-6,
                                       rtol=0)


def test_attention_cost_grows_linearly_with_the_grid() -> None:
    """A 4x larger grid costs ~4x the score entries (windows), not ~16x (global attention)."""
    from sr.models.unet import Attention

    attention = Attention(32, 32, window=8).eval()
    seen = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        seen.append(q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2])
        return real(q, k, v, **kw)

    with torch.no_grad(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
        attention(torch.randn(1, 32, 32, 32))
        attention(torch.randn(1, 32, 64, 64))
    assert seen[1] == 4 * seen[0]
