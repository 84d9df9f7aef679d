"""ResShiftSwinUNet is ResShift's UNetModelSwin: same state-dict layout, same numbers, TAD-SR's encoder features.

Fixtures (tests/models/fixtures/) were dumped from zsyOAOA/ResShift@3ce1d81 run as-is: the official config's
state-dict key -> shape, and a tiny config's outputs under seeded weights (see the `_note` in each file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from sr.config import SwinUNetParams
from sr.models.resshift_swin import ResShiftSwinUNet, shift_mask

FIXTURES = Path(__file__).parent / "fixtures"
DERIVED = ("relative_position_index", "attn_mask")


def seeded_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The fixture's weight rule: one generator seeded 0, keys in sorted order, randn * 0.2."""
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(v.shape, generator=g) * 0.2 for k, v in sorted(model.state_dict().items())}


def shapes(state: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in state.items()}


def test_official_config_has_the_official_layout_and_118_59m_parameters() -> None:
    official = json.loads((FIXTURES / "resshift_unet_official_keys.json").read_text())
    official.pop("_note")
    model = ResShiftSwinUNet(SwinUNetParams())  # defaults are configs/realsr_swinunet_realesrgan256.yaml

    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 118.59
    learned = {k: s for k, s in official.items() if not k.endswith(DERIVED)}
    assert shapes(model.state_dict()) == learned
    # The 24 Swin constants the official file stores exist here too, derived (non-persistent) with the same shapes.
    derived = {k: s for k, s in official.items() if k.endswith(DERIVED)}
    assert len(derived) == 24
    assert shapes(dict(model.named_buffers())) == derived
    # TAD-SR's only_fea features are hs[3], hs[6], hs[9], hs[11] (+ middle) at this config.
    assert model.level_ends == [3, 6, 9, 11]


def test_tiny_config_reproduces_the_reference_outputs() -> None:
    ref = json.loads((FIXTURES / "resshift_tiny_reference.json").read_text())["unet"]
    model = ResShiftSwinUNet(SwinUNetParams(**ref["config"])).eval()
    assert shapes(model.state_dict()) == {k: s for k, s in ref["state_dict"].items() if not k.endswith(DERIVED)}
    model.load_state_dict(seeded_weights(model))

    g = torch.Generator().manual_seed(1)
    for case in ref["cases"]:  # size 16 = the built grid (stored masks); 32 = masks rebuilt for a larger input
        size = case["size"]
        x = torch.randn(1, 3, size, size, generator=g)
        lq = torch.randn(1, 3, size, size, generator=g)
        with torch.no_grad():
            out = model(x, torch.tensor([case["t"]]), lq)
        expected = torch.tensor(case["output"]).view(1, 3, size, size)
        assert out.abs().mean() > 0.05  # not a degenerate (all-zero) reference
        torch.testing.assert_close(out, expected, atol=2e-5, rtol=0)


def test_shift_mask_follows_resshift_not_textbook_swin() -> None:
    mask = shift_mask(8, 8, window=4, shift=2)
    assert mask.shape == (4, 16, 16)
    # Windows of the top row are never masked, and the textbook mask would also split the right column's windows.
    assert (mask[0] == 0).all() and (mask[1] == 0).all()
    # Bottom-row windows: token (i, j) is labelled by j < 2 vs j >= 2 (ResShift reads its row labels transposed).
    for w in (2, 3):
        col = torch.arange(16) % 4
        expected = ((col[:, None] < 2) != (col[None, :] < 2)).float() * -100
        assert torch.equal(mask[w], expected)


def test_forward_and_encoder_features_shapes_at_a_tiny_config() -> None:
    p = SwinUNetParams(
        image_size=16,
        model_channels=32,
        channel_mult=[1, 2],
        num_res_blocks=[2, 2],
        attention_resolutions=[16, 8],
        swin_embed_dim=32,
        num_head_channels=16,
        window_size=4,
        mlp_ratio=2.0,
    )
    model = ResShiftSwinUNet(p, latent_channels=4, lq_channels=3)
    g = torch.Generator().manual_seed(0)
    x, lq = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 3, 16, 16, generator=g)
    t = torch.tensor([0, 14])
    assert model(x, t, lq).shape == (2, 4, 16, 16)
    feats = model.encoder_features(x, t, lq)
    # level 0 ends with its downsample (32ch @ 8²), level 1 with its last ResBlock (64ch @ 8²), then the middle
    assert [tuple(f.shape) for f in feats] == [(2, 32, 8, 8), (2, 64, 8, 8), (2, 64, 8, 8)]
    # Inputs larger than the built grid work (masks are rebuilt); sizes that break a window do not.
    assert model(torch.zeros(1, 4, 24, 24), torch.tensor([3]), torch.zeros(1, 3, 24, 24)).shape == (1, 4, 24, 24)
    with pytest.raises(ValueError, match="input size 12x12 is not a multiple of 8"):
        model(torch.zeros(1, 4, 12, 12), torch.tensor([3]), torch.zeros(1, 3, 12, 12))
    with pytest.raises(ValueError, match="differ in size"):
        model(torch.zeros(1, 4, 16, 16), torch.tensor([3]), torch.zeros(1, 3, 8, 8))


def test_swin_params_reject_inconsistent_configs() -> None:
    with pytest.raises(ValidationError, match="not a multiple of self.num_head_channels=48"):
        SwinUNetParams(num_head_channels=48, swin_embed_dim=192 + 32)
    with pytest.raises(ValidationError, match="one entry per level"):
        SwinUNetParams(num_res_blocks=[2, 2])
    with pytest.raises(ValidationError, match="multiples of 32"):
        SwinUNetParams(model_channels=48)
    with pytest.raises(ValidationError, match="tiled by the window"):
        SwinUNetParams(image_size=48)
