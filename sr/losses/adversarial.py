"""GAN losses on discriminator logits. A discriminator may return one logit tensor or a list (one per head/level);
every loss averages over all logits of all heads ("multiple heads, averaging", StyleGAN-T / TAD-SR).

- hinge (TAD-SR, docs/methods.md §3.4): L_D = mean relu(1 − D(real)) + mean relu(1 + D(fake)), L_G = −mean D(fake).
- logistic (Co-learning, §5, with D = sigmoid(logit) the probability of "real"): L_D = −log D(real) − log(1 − D(fake)),
  computed with softplus for stability. The paper writes the generator term as E[1 − D(fake)] ("paper"); it saturates
  when D is confident, so the default is the non-saturating −log D(fake).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Logits = torch.Tensor | list[torch.Tensor]


def flat(logits: Logits) -> torch.Tensor:
    """All logits of all heads as one (B, N) tensor."""
    if isinstance(logits, torch.Tensor):
        return logits.flatten(1)
    return torch.cat([x.flatten(1) for x in logits], dim=1)


def hinge_d_loss(real: Logits, fake: Logits) -> torch.Tensor:
    return F.relu(1 - flat(real)).mean() + F.relu(1 + flat(fake)).mean()


def hinge_g_loss(fake: Logits) -> torch.Tensor:
    return -flat(fake).mean()


def logistic_d_loss(real: Logits, fake: Logits) -> torch.Tensor:
    return F.softplus(-flat(real)).mean() + F.softplus(flat(fake)).mean()


def logistic_g_loss(fake: Logits, form: Literal["non_saturating", "paper"] = "non_saturating") -> torch.Tensor:
    match form:
        case "non_saturating":
            return F.softplus(-flat(fake)).mean()
        case "paper":
            return (1 - torch.sigmoid(flat(fake))).mean()
    raise ValueError(f"logistic_g_loss: form {form!r} is not one of 'non_saturating', 'paper'")
