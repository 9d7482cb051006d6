"""Chamfer distance and PointFlow's set metrics (:mod:`splatpack.metrics.point_clouds`)."""

from __future__ import annotations

import pytest
import torch

from splatpack.metrics.point_clouds import chamfer_distance, pairwise_chamfer, set_metrics


def test_chamfer_of_known_clouds():
    x = torch.tensor([[0.0, 0, 0], [1, 0, 0]])
    y = torch.tensor([[0.0, 0, 0]])
    assert chamfer_distance(x, y).item() == pytest.approx(0.5)  # (0 + 1) / 2 + 0
    assert chamfer_distance(y, x).item() == pytest.approx(0.5)
    assert chamfer_distance(x, x).item() == 0


def _clouds(centres: list[float], seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(64, 3, generator=g) * 0.1 + c for c in centres]


def _metrics(gen, ref):
    return set_metrics(pairwise_chamfer(gen, ref), pairwise_chamfer(gen, gen), pairwise_chamfer(ref, ref))


def test_copies_of_the_references_score_perfectly():
    ref = _clouds([0.0, 3.0, 6.0], seed=0)
    m = _metrics([r.clone() for r in ref], ref)
    assert m.mmd == 0 and m.cov == 1 and m.nna == 0  # every cloud's nearest is its copy


def test_collapsed_and_distant_samples_score_badly():
    ref = _clouds([0.0, 3.0, 6.0], seed=0)
    collapsed = _metrics(_clouds([0.0, 0.0, 0.0], seed=1), ref)
    assert collapsed.cov == pytest.approx(1 / 3) and collapsed.mmd > 1
    far = _metrics(_clouds([50.0, 53.0, 56.0], seed=1), ref)
    assert far.nna == 1 and far.mmd > 100
    near = _metrics(_clouds([0.0, 3.0, 6.0], seed=1), ref)
    assert near.cov == 1 and near.mmd < 0.1 and near.nna == 0
