"""Training-free pruning by render contribution (``splatpack.compress.pruning``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splatpack.compress.pruning import contributions, prune_lowest, prune_to_bound
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.render.camera import orbit_cameras
from splatpack.render.gaussians import render_gaussians


def blob_scene(n: int = 400, seed: int = 0) -> GaussianSet:
    g = torch.Generator().manual_seed(seed)
    gs = GaussianSet.from_numpy(
        means=torch.randn(n, 3, generator=g).numpy() * 0.5,
        quats=torch.randn(n, 4, generator=g).numpy(),
        scales=np.log(torch.rand(n, 3, generator=g).numpy() * 0.08 + 0.02),
        opacities=torch.randn(n, generator=g).numpy() * 2,
        sh0=torch.randn(n, 3, generator=g).numpy(),
        shN=np.zeros((n, 0, 3), np.float32),
    )
    return gs


def views(gs, n=4, size=48):
    return orbit_cameras(gs.means, n, size, 60.0)


def test_contributions_sum_to_the_rendered_alpha():
    """Σ_i α_i T_i = 1 − T_final at every pixel: the weights add up to the views' alpha."""
    gs = blob_scene()
    poses, K = views(gs)
    w = contributions(gs, poses, K, 48)
    total_alpha = 0.0
    for c2w in poses:
        vm = torch.from_numpy(np.linalg.inv(c2w)).float()
        _, alpha, _ = render_gaussians(gs, vm, torch.from_numpy(K).float(), 48, 48, backend="cpu")
        total_alpha += float(alpha.sum())
    assert w.shape == (len(gs),) and (w >= 0).all()
    assert float(w.sum()) == pytest.approx(total_alpha, rel=1e-4)


def test_a_hidden_gaussian_contributes_nothing_and_goes_first():
    gs = blob_scene(200)
    far = GaussianSet.from_numpy(
        means=np.array([[500.0, 500.0, 500.0]]),  # outside every view
        quats=np.array([[1.0, 0, 0, 0]]),
        scales=np.log(np.full((1, 3), 0.05)),
        opacities=np.array([5.0]),
        sh0=np.zeros((1, 3)),
        shN=np.zeros((1, 0, 3)),
    )
    both = GaussianSet(**{f: torch.cat([getattr(gs, f), getattr(far, f)]) for f in GaussianSet.__dataclass_fields__})
    poses, K = views(gs)
    w = contributions(both, poses, K, 48)
    assert w[-1] == 0
    pruned = prune_lowest(both, w, 1 / len(both))
    assert len(pruned) == len(gs) and torch.equal(pruned.means, gs.means)  # order kept, the far one gone


def test_prune_lowest_removes_the_fraction_and_refuses_bad_ones():
    gs = blob_scene(100)
    w = torch.arange(100, dtype=torch.float64).flip(0)  # the last Gaussians weigh least
    out = prune_lowest(gs, w, 0.3)
    assert len(out) == 70 and torch.equal(out.means, gs.means[:70])
    assert prune_lowest(gs, w, 0.0) is gs
    for bad in (-0.1, 1.0):
        with pytest.raises(SplatpackError):
            prune_lowest(gs, w, bad)


def test_prune_to_bound_keeps_the_largest_fraction_that_passes():
    gs = blob_scene(100)
    w = torch.rand(100, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    quality = lambda s: 100.0 - (100 - len(s))
    pruned, fraction, q = prune_to_bound(gs, w, quality, bound=82.0)
    assert fraction == 0.15 and len(pruned) == 85 and q == 85.0
    same, none, inf = prune_to_bound(gs, w, quality, bound=99.0)
    assert same is gs and none == 0.0 and inf == float("inf")
