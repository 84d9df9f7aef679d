"""Teacher trainer helpers on tiny tensors (the full stage runs in tests/test_stages.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sr.train.teacher import rotate_pairs


def test_rotate_pairs_turns_each_pair_together_by_its_own_draw():
    hq = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    lq = F.avg_pool2d(hq, 4)
    turns = torch.randint(4, (16,), generator=torch.Generator().manual_seed(1)).tolist()
    out_hq, out_lq = rotate_pairs(hq, lq, turns)
    assert len(set(turns)) > 1  # per pair, not one turn for the whole batch
    for i, k in enumerate(turns):
        assert torch.equal(out_hq[i], hq[i].rot90(k, (-2, -1))) and torch.equal(out_lq[i], lq[i].rot90(k, (-2, -1)))
    torch.testing.assert_close(F.avg_pool2d(out_hq, 4), out_lq)  # still a degraded pair
