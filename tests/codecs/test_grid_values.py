"""Step 1 of the grid codec (``splatpack.codecs.grid.values``): each attribute in its coded domain."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from grid_scenes import smooth_scene

from splatpack.codecs.grid import GridCodecConfig
from splatpack.codecs.grid.values import coded_values, float64_numpy
from splatpack.core.errors import SplatpackError


def test_coded_domains():
    gs = smooth_scene(n=50, seed=1, degree=2)
    logit = coded_values(gs, GridCodecConfig())
    alpha = coded_values(gs, GridCodecConfig(opacity_space="alpha"))
    x = gs.means.double().numpy()
    assert np.allclose(np.sign(logit["means"]) * np.expm1(np.abs(logit["means"])), x)
    assert np.array_equal(logit["scales"], gs.scales.double().numpy())
    assert np.array_equal(logit["sh0"], gs.sh0.double().numpy().reshape(50, 3))
    assert logit["shN"].shape == (50, 24)  # [N, 3(K−1)], coefficient-major, RGB inner
    assert np.array_equal(logit["shN"][:, 3:6], gs.shN[:, 1].double().numpy())
    q = logit["quats"]
    assert np.allclose(np.linalg.norm(q, axis=1), 1) and (q[:, 0] >= 0).all()
    assert np.array_equal(logit["opacities"][:, 0], gs.opacities.double().numpy())
    assert np.allclose(alpha["opacities"][:, 0], torch.sigmoid(gs.opacities.double()).numpy())
    assert all(v.dtype == np.float64 for v in logit.values())
    assert "shN" not in coded_values(smooth_scene(n=5, degree=0), GridCodecConfig())


def test_non_finite_values_are_refused():
    gs = smooth_scene(n=8)
    gs.scales[2, 0] = float("inf")
    with pytest.raises(SplatpackError, match="'scales' has non-finite values"):
        coded_values(gs, GridCodecConfig())


def test_float64_numpy_detaches():
    t = torch.ones(3, requires_grad=True)
    a = float64_numpy(t * 2)
    assert a.dtype == np.float64 and a.tolist() == [2.0, 2.0, 2.0]
