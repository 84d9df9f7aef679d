import pytest
import torch

from sr.models.colorfix import color_fix


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    output, source = (torch.rand(2, 2, 3, 16, 16, generator=g) - 0.5) / 2
    return output, source


def test_wavelet_takes_the_low_band_from_the_input_and_detail_from_the_output():
    output, source = _pair()
    torch.testing.assert_close(color_fix(source, source, "wavelet"), source, rtol=0, atol=1e-6)  # bands sum back
    flat = torch.full_like(output, 0.25)
    low = color_fix(flat, source, "wavelet")  # a flat output has no detail: only the input's low band is left
    assert low.std() < source.std() / 3
    torch.testing.assert_close(low.mean(dim=(-2, -1)), source.mean(dim=(-2, -1)), rtol=0, atol=0.02)


def test_adain_gives_each_channel_the_inputs_mean_and_spread():
    output, source = _pair()
    fixed = color_fix(output * 0.2 + 0.3, source, "adain")
    torch.testing.assert_close(fixed.mean(dim=(-2, -1)), source.mean(dim=(-2, -1)), rtol=0, atol=1e-5)
    torch.testing.assert_close(fixed.std(dim=(-2, -1)), source.std(dim=(-2, -1)), rtol=1e-3, atol=1e-5)


def test_an_unknown_fix_is_named():
    output, source = _pair()
    with pytest.raises(ValueError, match=r"^color fix 'hist' is not one of none, adain, wavelet$"):
        color_fix(output, source, "hist")
