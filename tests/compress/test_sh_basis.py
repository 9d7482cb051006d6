"""Low-rank SH rest generators: exact on low-rank data, Parseval distortion, rank choice, band culling."""

import dataclasses

import numpy as np
import pytest
import torch
from grid_scenes import smooth_scene

from splatpack.compress.sh_basis import (
    band_degrees,
    choose_rank,
    colour_mse,
    cull_bands,
    culled_gaussians,
    fit_sh_basis,
    zeroed_sh_rest,
)
from splatpack.core.errors import SplatpackError
from splatpack.core.sh import eval_sh_bases


def low_rank_shn(rng, n=2000, rank=4, noise=0.0):
    basis = rng.normal(size=(rank, 45))
    x = rng.normal(size=(n, rank)) @ basis + 0.3 + noise * rng.normal(size=(n, 45))
    return x.reshape(n, 15, 3)


def test_pca_reconstructs_rank_r_data_exactly_and_coefficients_count_r():
    x = low_rank_shn(np.random.default_rng(0))
    b = fit_sh_basis(x, 4, "pca")
    assert b.coefficients == 4
    np.testing.assert_allclose(b.reconstruct(b.project(x)), x, atol=1e-9)
    lower = fit_sh_basis(x, 3, "pca")
    assert colour_mse(x, lower.reconstruct(lower.project(x))) > 1e-3  # one rank short loses energy


def test_tucker_with_shared_colour_rank_reconstructs_separable_data():
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=(15, 3)), rng.normal(size=(3, 2))
    g = rng.normal(size=(500, 3, 2))
    x = np.einsum("kr,nrs,cs->nkc", u, g, v)
    b = fit_sh_basis(x, (3, 2), "tucker")
    assert b.coefficients == 6
    np.testing.assert_allclose(b.reconstruct(b.project(x)), x, atol=1e-9)


def test_colour_mse_is_the_view_averaged_squared_colour_error():
    """Parseval: the coefficient error equals the mean over the sphere of the rendered colour error."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 15, 3)), rng.normal(size=(3, 15, 3))
    dirs = torch.nn.functional.normalize(torch.randn(200_000, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    y_rest = eval_sh_bases(3, dirs.double())[:, 1:]  # [D, 15], the bands above 0
    diff = torch.from_numpy(x - y)  # [3, 15, 3]
    err = [((y_rest @ diff[i]) ** 2).sum(1).mean().item() for i in range(3)]
    assert colour_mse(x, y) == pytest.approx(np.mean(err), rel=0.02)


def test_weights_decide_which_gaussians_the_basis_serves():
    rng = np.random.default_rng(3)
    a, b = np.zeros((100, 15, 3)), np.zeros((100, 15, 3))
    a[:, 0, 0] = rng.normal(size=100)  # two groups varying along different directions
    b[:, 5, 2] = rng.normal(size=100)
    x = np.concatenate([a, b])
    w = np.r_[np.ones(100), np.full(100, 1e-3)]
    fit = fit_sh_basis(x, 1, "pca", weights=w)
    assert abs(fit.left.reshape(15, 3, 1)[0, 0, 0]) > 0.99  # the heavy group's direction


def test_choose_rank_finds_the_true_rank_and_falls_as_bits_get_dearer():
    x = low_rank_shn(np.random.default_rng(4), rank=6, noise=1e-3)
    assert choose_rank(x, bits=6, lam=1e-5) == 6
    ranks = [choose_rank(x, bits=6, lam=lam) for lam in (1e-5, 1e-2, 1.0)]
    assert ranks == sorted(ranks, reverse=True) and ranks[-1] < 6


def test_band_degrees_and_culling():
    x = np.zeros((4, 15, 3))
    x[1, 0] = 0.5  # band 1 only
    x[2, 3] = 0.5  # band 2
    x[3, 14] = 0.5  # band 3
    x[3, 0] = 1e-4  # tiny band-1 energy, below tau
    deg = band_degrees(x, tau=1e-3)
    assert deg.tolist() == [0, 1, 2, 3]
    culled = cull_bands(x, np.array([0, 1, 1, 3]))
    assert culled[2].sum() == 0 and culled[1, 0, 0] == 0.5 and culled[3, 14, 0] == 0.5
    np.testing.assert_allclose(cull_bands(x, deg), x, atol=1e-6)  # the found degrees drop nothing


def test_bad_inputs_are_refused():
    x = np.zeros((10, 15, 3))
    with pytest.raises(SplatpackError):
        fit_sh_basis(x, 46, "pca")
    with pytest.raises(SplatpackError):
        fit_sh_basis(x, (3, 4), "tucker")
    with pytest.raises(SplatpackError):
        fit_sh_basis(np.zeros((10, 15)), 2)
    with pytest.raises(SplatpackError):
        fit_sh_basis(x, 2, weights=np.zeros(10))
    with pytest.raises(SplatpackError):
        band_degrees(np.zeros((3, 10, 3)), 1e-3)


def test_weighted_band_culling_keeps_bands_where_renders_see_them():
    x = np.zeros((2, 15, 3))
    x[:, 3] = 0.1  # the same band-2 energy in both
    deg = band_degrees(x, tau=1e-3, weights=np.array([1.9, 0.1]))
    assert band_degrees(x, tau=1e-3).tolist() == [2, 2]
    assert deg.tolist() == [2, 0]  # the barely seen one loses its bands


def test_culled_gaussians_zero_unneeded_bands_and_keep_degree_zero_sets():
    from grid_scenes import smooth_scene

    gs = smooth_scene(n=100, degree=3)
    culled, mean_degree = culled_gaussians(gs, 1.0)  # every band is below an energy of 1
    assert mean_degree == 0.0 and float(culled.shN.abs().max()) == 0.0
    assert torch.equal(culled.means, gs.means)
    flat = smooth_scene(n=10, degree=0)
    assert culled_gaussians(flat, 1.0) == (flat, 0.0)


def test_zeroed_sh_rest_zeroes_the_least_weighted_energy_first():
    """``zeroed_sh_rest``: ⌊f·N⌋ whole SH rests set to zero, those of least view-averaged energy
    times render weight; fraction 0 and degree-0 sets come back as they are; f outside [0, 1)
    is refused."""
    rng = np.random.default_rng(3)
    shn = torch.tensor(rng.normal(size=(10, 3, 3)), dtype=torch.float32) * torch.arange(1, 11)[:, None, None]
    gs = dataclasses.replace(smooth_scene(n=10, degree=1), shN=shn)
    out = zeroed_sh_rest(gs, 0.3)
    zero = ~out.shN.reshape(10, -1).bool().any(1)
    energy = (shn**2).sum((1, 2))
    assert set(torch.nonzero(zero).flatten().tolist()) == set(torch.argsort(energy)[:3].tolist())
    assert torch.equal(out.shN[~zero], shn[~zero]) and torch.equal(gs.shN, shn)  # the input is untouched
    weights = np.ones(10)
    weights[int(torch.argmax(energy))] = 1e-9  # the strongest SH rest, never seen in renders, goes first
    first = ~zeroed_sh_rest(gs, 0.1, weights).shN.reshape(10, -1).bool().any(1)
    assert torch.nonzero(first).flatten().tolist() == [int(torch.argmax(energy))]
    assert zeroed_sh_rest(gs, 0.0) is gs
    flat = smooth_scene(n=10, degree=0)
    assert zeroed_sh_rest(flat, 0.5) is flat
    for bad in (-0.1, 1.0):
        with pytest.raises(SplatpackError, match="zeroed"):
            zeroed_sh_rest(gs, bad)
