"""The SH rest of grid scenes as a low-rank generator (``sh_mode="basis"``,
``splatpack.codecs.grid.basis``): exact on low-rank SH, a shared step, fewer bytes than the
coefficient grid, bounded and checked when decoding."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from grid_scenes import raster_order

from splatpack.codecs.grid import AttributeCoding, GridCodecConfig, encode_grid_scene, read_grid_scene
from splatpack.codecs.grid.basis import basis_coefficients, basis_values
from splatpack.core.errors import SplatpackError
from splatpack.spk.arrays import encode_array
from splatpack.spk.container import Section, SpkError, write_spk


def low_rank(scene, rank: int, seed: int = 0):
    """``scene`` with its SH rest replaced by a rank-``rank`` one (plus a mean)."""
    rng = np.random.default_rng(seed)
    n = len(scene)
    shn = (rng.normal(size=(n, rank)) @ rng.normal(size=(rank, 45)) * 0.05 + 0.02).reshape(n, 15, 3)
    return dataclasses.replace(scene, shN=torch.tensor(shn, dtype=torch.float32))


def basis_cfg(rank: int, bits: int = 12) -> GridCodecConfig:
    return GridCodecConfig(sh_mode="basis", basis_rank=rank, shN=AttributeCoding(bits))


def test_coefficients_share_one_step_and_round_trip_within_it():
    rng = np.random.default_rng(1)
    t = (rng.normal(size=(500, 6)) * [3, 2, 1, 0.5, 0.1, 0.01]) @ rng.normal(size=(6, 45))
    q, lo, hi, table = basis_coefficients(t.astype(np.float32), 6, 10)
    steps = (hi - lo) / np.float32(1023)
    assert np.allclose(steps, steps[0]) and q.shape == (500, 6) and table.shape == (7, 45)
    assert q[:, 5].max() < 16  # the narrowest component uses few of its levels
    err = np.abs(basis_values(q, lo, hi, 10, table) - t).max()
    assert err <= np.sqrt(6) * steps[0]  # at most half a step per coefficient, through an orthonormal basis


def test_a_given_lattice_is_coded_on_as_it_is():
    """``lattice`` (lo, hi, table): the coefficients are the projections on that generator,
    quantised over that range (what quantisation-aware refinement rendered), not a new fit;
    the fitted lattice given back reproduces the fit's codes; a misshapen one is refused."""
    rng = np.random.default_rng(2)
    t = ((rng.normal(size=(300, 4)) * [2, 1, 0.5, 0.2]) @ rng.normal(size=(4, 24))).astype(np.float32)
    q, lo, hi, table = basis_coefficients(t, 4, 8)
    q2, lo2, hi2, table2 = basis_coefficients(t, 4, 8, (lo, hi, table))
    assert np.array_equal(lo2, lo) and np.array_equal(table2, table)
    assert np.mean(q2 == q) > 0.999  # float32 table against the fit's float64 basis: rare ties differ
    wide = (lo - 1.0, hi + 1.0, table)
    q3, lo3, hi3, _ = basis_coefficients(t, 4, 8, wide)
    assert np.array_equal(lo3, wide[0]) and q3.max() < q.max()  # the given, wider range: coarser codes
    back = basis_values(q3, lo3, hi3, 8, table)
    step = float((hi3 - lo3)[0]) / 255
    assert np.abs(back - t).max() <= 1.01 * step  # ‖error‖ ≤ √4 · Δ/2 on an orthonormal rank-4 basis
    with pytest.raises(SplatpackError, match="SH-rest lattice"):
        basis_coefficients(t, 4, 8, (lo[:3], hi[:3], table))
    with pytest.raises(SplatpackError, match="SH-rest lattice"):
        basis_coefficients(t, 4, 8, (lo, hi, table[:, :12]))


def test_basis_mode_decodes_low_rank_sh_and_is_smaller_than_the_grid(scene, grid, tmp):
    gs = low_rank(scene, 6)
    sections, meta = encode_grid_scene(gs, basis_cfg(6), grid_index=grid)
    names = {s.name for s in sections}
    assert {"grid.shN.coefs", "grid.shN.basis"} <= names and "grid.shN" not in names
    assert meta["attributes"]["shN"]["mode"] == "basis" and meta["attributes"]["shN"]["rank"] == 6
    write_spk(tmp / "basis.spk", sections, meta, len(gs))
    dec = read_grid_scene(tmp / "basis.spk")
    ref = gs.subset(raster_order(grid)).shN
    assert (dec.shN - ref).abs().max() < 2e-3
    grid_sections, _ = encode_grid_scene(gs, GridCodecConfig(shN=AttributeCoding(12)), grid_index=grid)
    size = lambda secs: sum(len(s.payload) for s in secs if s.name.startswith("grid.shN"))
    assert size(sections) < size(grid_sections)


def test_rank_is_clipped_to_the_sh_dimensions(tmp):
    from grid_scenes import smooth_scene

    gs = smooth_scene(degree=1)
    sections, meta = encode_grid_scene(gs, basis_cfg(12, 8))
    assert meta["attributes"]["shN"]["rank"] == 9
    write_spk(tmp / "deg1.spk", sections, meta, len(gs))
    assert read_grid_scene(tmp / "deg1.spk").shN.shape == (len(gs), 3, 3)


def test_bad_rank_setting_is_refused():
    with pytest.raises(SplatpackError, match="basis_rank"):
        basis_cfg(0).validate()
    with pytest.raises(SplatpackError, match="basis_rank"):
        basis_cfg(46).validate()


def replaced(sections, name: str, array: np.ndarray):
    """``sections`` with section ``name``'s payload replaced by ``array`` deflated (a forgery)."""
    return [Section(s.name, s.codec, encode_array(array, "deflate")) if s.name == name else s for s in sections]


@pytest.mark.parametrize("forge", ["rank", "basis-nan", "basis-short", "coefs-bits"])
def test_forged_basis_files_give_one_spk_error(scene, grid, tmp, forge):
    sections, meta = encode_grid_scene(low_rank(scene, 4), basis_cfg(4, 8), grid_index=grid)
    meta = json.loads(json.dumps(meta))
    e = meta["attributes"]["shN"]
    if forge == "rank":
        e["rank"] = 46
    elif forge == "coefs-bits":
        e["bits"] = 3  # the planes hold 8-bit values
    else:
        table = np.zeros((5 if forge == "basis-nan" else 4, 45), np.float32)
        table[0, 0] = np.nan if forge == "basis-nan" else 0
        sections = replaced(sections, "grid.shN.basis", table)
    write_spk(tmp / f"{forge}.spk", sections, meta, len(scene))
    with pytest.raises(SpkError):
        read_grid_scene(tmp / f"{forge}.spk")


def zeroed(scene, every: int = 3):
    """``low_rank(scene, 4)`` with the SH rest of every ``every``-th Gaussian zero."""
    gs = low_rank(scene, 4)
    shn = gs.shN.clone()
    shn[::every] = 0.0
    return dataclasses.replace(gs, shN=shn)


def test_zero_sh_rests_are_a_mask_and_the_others_coefficients_are_packed(scene, grid, tmp):
    """Gaussians whose SH rest is exactly zero are marked in ``grid.shN.zero`` and decode to zero;
    only the others' coefficients are coded (fewer bytes), on a basis fitted to them alone."""
    gs = zeroed(scene)
    sections, meta = encode_grid_scene(gs, basis_cfg(4), grid_index=grid)
    zeros = -(-len(gs) // 3)
    assert meta["attributes"]["shN"]["zero"] == zeros
    write_spk(tmp / "zero.spk", sections, meta, len(gs))
    dec = read_grid_scene(tmp / "zero.spk").shN.reshape(len(gs), -1)
    ref = gs.subset(raster_order(grid)).shN.reshape(len(gs), -1)
    is_zero = ~ref.bool().any(1)
    assert int(is_zero.sum()) == zeros and torch.equal(dec[is_zero], torch.zeros_like(dec[is_zero]))
    assert (dec[~is_zero] - ref[~is_zero]).abs().max() < 2e-3
    dense, dense_meta = encode_grid_scene(low_rank(scene, 4), basis_cfg(4), grid_index=grid)
    coefs = lambda secs: next(len(s.payload) for s in secs if s.name == "grid.shN.coefs")
    assert coefs(sections) < coefs(dense) and "zero" not in dense_meta["attributes"]["shN"]
    assert "grid.shN.zero" not in {s.name for s in dense}


@pytest.mark.parametrize("forge", ["count", "too-many", "mask-missing", "mask-short"])
def test_forged_zero_masks_give_one_spk_error(scene, grid, tmp, forge):
    sections, meta = encode_grid_scene(zeroed(scene), basis_cfg(4, 8), grid_index=grid)
    meta = json.loads(json.dumps(meta))
    e = meta["attributes"]["shN"]
    if forge == "count":
        e["zero"] -= 1  # the mask marks one more
    elif forge == "too-many":
        e["zero"] = len(scene)  # every SH rest zero: never written so, and no coefficients left
    elif forge == "mask-missing":
        sections = [s for s in sections if s.name != "grid.shN.zero"]
    else:
        sections = replaced(sections, "grid.shN.zero", np.zeros(3, np.uint8))
    write_spk(tmp / f"{forge}.spk", sections, meta, len(scene))
    with pytest.raises(SpkError):
        read_grid_scene(tmp / f"{forge}.spk")
