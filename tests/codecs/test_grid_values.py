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


def _fixed_point(gs, steps=(3000, 9000, 500), seed=0):
    """``gs`` with positions on SPZ's fixed-point lattice (2⁻¹² steps), spanning ``steps``."""
    import dataclasses

    rng = np.random.default_rng(seed)
    codes = np.stack([rng.integers(0, s + 1, len(gs)) for s in steps], 1)
    codes[0], codes[1] = 0, steps  # the span is reached
    return dataclasses.replace(gs, means=torch.from_numpy((codes * 2.0**-12 - 1.0).astype(np.float32)))


def test_fixed_point_positions_are_coded_linearly_on_their_lattice(tmp_path):
    """``auto`` codes positions on their own lattice where its bits fit the level's + 1 (exact,
    the file says ``linear``), and as the log otherwise (float positions, or too many bits)."""
    from splatpack.codecs.grid import read_grid_scene, write_grid_scene
    from splatpack.codecs.grid.values import resolved_positions
    from splatpack.spk.container import SpkReader

    gs = _fixed_point(smooth_scene(n=300, seed=2, degree=0))
    level = GridCodecConfig.from_quality(6)  # 13 bits: 9000 steps need 14
    assert level.means_transform == "auto"
    cfg = resolved_positions(gs, level)
    assert cfg.means_transform == "linear" and cfg.means.bits == 14
    assert resolved_positions(gs, GridCodecConfig.from_quality(3)).means_transform == "signed-log1p"  # 12 + 1 < 14
    assert resolved_positions(smooth_scene(n=300, seed=2), level).means_transform == "signed-log1p"
    assert resolved_positions(gs, GridCodecConfig()).means_transform == "signed-log1p"  # SOG: as set
    path = tmp_path / "fixed.spk"
    write_grid_scene(path, gs, level)
    with SpkReader(path) as r:
        assert r.meta["means_transform"] == "linear" and r.meta["attributes"]["means"]["bits"] == 14
        assert r.meta["attributes"]["means"]["encoding"] == "curve-keys"
    dec = read_grid_scene(path)
    want = np.sort(gs.means.double().numpy().view("f8,f8,f8"), axis=0)
    got = np.sort(dec.means.double().numpy().view("f8,f8,f8"), axis=0)
    assert np.abs(want.view(np.float64) - got.view(np.float64)).max() < 1e-6  # every position exact
