"""GAN losses on known logits, and their gradient signs."""

import math

import pytest
import torch

from sr.losses.adversarial import flat, hinge_d_loss, hinge_g_loss, logistic_d_loss, logistic_g_loss


def test_hinge_values_on_known_logits():
    real, fake = torch.tensor([[2.0, 0.5]]), torch.tensor([[-2.0, 0.0]])
    # relu(1 - [2, .5]) = [0, .5] -> .25 ; relu(1 + [-2, 0]) = [0, 1] -> .5
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.75)
    assert hinge_g_loss(fake).item() == pytest.approx(1.0)


def test_heads_of_different_sizes_are_averaged_over_all_logits():
    heads = [torch.zeros(2, 3), torch.ones(2, 1, 5)]
    assert flat(heads).shape == (2, 8)
    assert hinge_g_loss(heads).item() == pytest.approx(-5 / 8)


def test_logistic_values_and_forms():
    zero = torch.zeros(1, 4)
    assert logistic_d_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert logistic_g_loss(zero).item() == pytest.approx(math.log(2))
    assert logistic_g_loss(zero, "paper").item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="form"):
        logistic_g_loss(zero, "wasserstein")


@pytest.mark.parametrize("g_loss", [hinge_g_loss, logistic_g_loss])
def test_generator_losses_push_fake_logits_up(g_loss):
    fake = torch.tensor([[0.3, -0.2]], requires_grad=True)
    g_loss(fake).backward()
    assert (fake.grad < 0).all()


@pytest.mark.parametrize("d_loss", [hinge_d_loss, logistic_d_loss])
def test_discriminator_losses_push_real_up_and_fake_down(d_loss):
    real = torch.tensor([[0.3]], requires_grad=True)
    fake = torch.tensor([[0.1]], requires_grad=True)
    d_loss(real, fake).backward()
    assert real.grad.item() < 0 < fake.grad.item()
