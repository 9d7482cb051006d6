"""The masked bit predictor (:mod:`splatpack.generative.bitmodel`): a decoding order that covers
every bit once, most significant first; probabilities of a group that do not depend on the bits
of its own or later groups; quantised probabilities inside (0, 1); a training loss that falls."""

from __future__ import annotations

import math

import pytest
import torch
from prior_models import one_torch_thread

from splatpack.generative.bitmodel import (
    PROB_ONE,
    BitModel,
    BitModelConfig,
    GroupOrder,
    coding_copy,
    group_probabilities,
    masked_loss,
    quantise_probabilities,
)


@pytest.mark.parametrize("spatial", [2, 4])
def test_groups_cover_every_bit_once_most_significant_first(spatial):
    order = GroupOrder((0, 1, 2, 0, 1), spatial)
    groups = order.groups(6, 8)
    assert torch.stack(groups).sum(0).eq(1).all()  # a partition of [K, H, W]
    ranks = torch.tensor(order.ranks)[:, None, None].expand(5, 6, 8)
    seen = [int(ranks[g].max()) for g in groups]
    assert seen == sorted(seen) and all(int(ranks[g].min()) == int(ranks[g].max()) for g in groups)
    assert len(groups) == 3 * spatial
    # each spatial phase of one rank is a 1/spatial share of the cells (2×2 blocks: one cell each)
    assert {int(g[0].sum()) for g in groups if g[0].any()} == {48 // spatial}


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


def test_phase_major_groups_finish_a_phase_before_the_next():
    order = GroupOrder((0, 1, 2, 0, 1), 4, phase_major=True)
    groups = order.groups(6, 8)
    assert torch.stack(groups).sum(0).eq(1).all() and len(groups) == 12
    phase = order.phase(6, 8)[None].expand(5, 6, 8)
    ranks = torch.tensor(order.ranks)[:, None, None].expand(5, 6, 8)
    assert [int(phase[g].max()) for g in groups] == [s for s in range(4) for _ in range(3)]
    assert [int(ranks[g].max()) for g in groups] == [0, 1, 2] * 4
    # a cell of the last phase sees its four direct neighbours complete when its turn comes
    known = torch.stack(groups[:9]).any(0)
    y, x = [int(v) for v in torch.nonzero(phase[0] == 3)[3]]
    assert all(known[:, y + dy, x + dx].all() for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)))


def test_groups_skip_known_planes():
    groups = GroupOrder((0, 1, 0), 2).groups(4, 4, skip=[False, False, True])
    total = torch.stack(groups).sum(0)
    assert total[2].eq(0).all() and total[:2].eq(1).all()


def test_group_probabilities_ignore_bits_not_yet_decoded():
    torch.manual_seed(0)
    cfg = BitModelConfig(ranks=(0, 1, 0, 1), hidden=8, blocks=2)
    model = coding_copy(BitModel(cfg))
    bits = torch.randint(0, 2, (4, 6, 6)).double()
    groups = cfg.order.groups(6, 6)
    known = groups[0] | groups[1]
    other = torch.where(known, bits, 1 - bits)  # every unknown bit flipped
    p = group_probabilities(model, bits, known, groups[2])
    assert (p == group_probabilities(model, other, known, groups[2])).all()
    assert p.size == int(groups[2].sum()) and p.min() >= 1 and p.max() <= PROB_ONE - 1
    changed = bits.clone()
    changed[groups[0]] = 1 - changed[groups[0]]  # a decoded bit changes: so may the probabilities
    assert (p != group_probabilities(model, changed, known, groups[2])).any()


def test_group_probabilities_refuse_a_training_model():
    model = BitModel(BitModelConfig(ranks=(0,), hidden=4, blocks=1))
    with pytest.raises(ValueError, match="coding_copy"):
        group_probabilities(
            model, torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool), torch.ones(1, 2, 2) > 0
        )


def test_quantised_probabilities_stay_inside_zero_one():
    q = quantise_probabilities(torch.tensor([-100.0, 0.0, 100.0]))
    assert q.tolist() == [1, PROB_ONE // 2, PROB_ONE - 1]


def test_config_round_trips_through_a_dict():
    cfg = BitModelConfig(ranks=(0, 1, 2), spatial=4, phase_major=True, hidden=16, blocks=3, dilations=(1, 2, 4))
    assert BitModelConfig.from_dict(cfg.to_dict()) == cfg


def _copy_cost(model: BitModel, b0: torch.Tensor) -> float:
    """Bits per bit of plane 1 given plane 0."""
    known = torch.zeros(len(b0), 2, *b0.shape[2:], dtype=torch.bool)
    known[:, 0] = True
    with torch.no_grad():
        logits = model(torch.cat([b0, b0], 1), known)[:, 1]
    return float(torch.nn.functional.binary_cross_entropy_with_logits(logits, b0[:, 0])) / math.log(2)


def test_masked_loss_teaches_a_predictable_plane():
    # plane 1 copies plane 0 (decoded first): the objective teaches the model to code it for free
    torch.manual_seed(0)
    model = BitModel(BitModelConfig(ranks=(0, 1), hidden=8, blocks=1))
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    g = torch.Generator().manual_seed(0)
    test = torch.randint(0, 2, (4, 1, 8, 8), generator=g).float()
    before = _copy_cost(model, test)
    for _ in range(25):
        b0 = torch.randint(0, 2, (8, 1, 8, 8), generator=g).float()
        loss = masked_loss(model, torch.cat([b0, b0], 1), g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert before > 0.9 and _copy_cost(model, test) < 0.3
