"""The image-space terms of distillation (sr/losses/image.py) on images with known steps."""

import pytest
import torch

from sr.losses.image import ImageLoss, border_ratio
from tests.pipeline_fixtures import default_params


def _params(**weights):
    return default_params().distill.image.model_copy(update={"lambda_lpips": 0.0, **weights})


def _steps() -> torch.Tensor:
    """8x8, zero in columns 0-1, 0.4 in 2-3, 0.6 from 4: a step of 0.4 inside the first 4-px cell and one of 0.2
    across its border (between columns 3 and 4)."""
    image = torch.zeros(1, 3, 8, 8)
    image[..., 2:] = 0.4
    image[..., 4:] = 0.6
    return image


def test_terms_have_known_values_and_zero_weights_are_skipped():
    loss = ImageLoss(_params(lambda_l1=2.0, lambda_grad=0.5, lambda_grid=0.1), period=4, torch_home=None)
    assert loss.names == ["img_l1", "img_grad", "img_grid"] and loss.lpips is None  # no LPIPS network loaded
    hq = torch.zeros(1, 3, 8, 8)
    losses, total = loss(_steps(), hq)
    assert losses["img_l1"].item() == pytest.approx((2 * 0.4 + 4 * 0.6) / 8)
    assert losses["img_grad"].item() == pytest.approx(0.6 / 7)  # two of seven column differences; no row steps
    # the border step (0.2) over the mean of the other six column differences (0.4 / 6); a flat HQ has ratio 0
    assert losses["img_grid"].item() == pytest.approx(0.2 / (0.4 / 6), rel=1e-4)
    assert total.item() == pytest.approx(2.0 * 0.4 + 0.5 * 0.6 / 7 + 0.1 * 3.0, rel=1e-4)
    only_l1 = ImageLoss(_params(lambda_l1=1.0, lambda_grad=0.0, lambda_grid=0.0), period=4, torch_home=None)
    assert list(only_l1(_steps(), hq)[0]) == ["img_l1"]


def test_grid_term_only_penalises_more_grid_than_the_hq_has():
    image = _steps()
    assert border_ratio(image, 4).item() == pytest.approx(3.0, rel=1e-4)
    assert border_ratio(image, 2).item() > 1e4  # both steps sit on 2-px borders, none inside
    loss = ImageLoss(_params(lambda_l1=0.0, lambda_grad=0.0, lambda_grid=1.0), period=4, torch_home=None)
    assert loss(image, image * 2)[0]["img_grid"].item() == 0.0  # the same ratio as its HQ: nothing to remove


def test_lpips_needs_its_weights():
    with pytest.raises(ValueError, match="lambda_lpips > 0 needs the LPIPS weights"):
        ImageLoss(_params(lambda_lpips=1.0), period=4, torch_home=None)
