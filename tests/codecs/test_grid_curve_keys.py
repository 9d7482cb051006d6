"""Positions as sorted Hilbert keys (``splatpack.codecs.grid.curve_keys``, ``means_encoding="curve-keys"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from grid_scenes import smooth_scene

from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid import GridCodecConfig, encode_grid_scene, read_grid_scene
from splatpack.codecs.grid.curve_keys import curve_key_order, gap_streams, keys_from_streams, rest_bit_count
from splatpack.codecs.grid.encode import scene_grid
from splatpack.codecs.grid.layout import GridCells
from splatpack.compress.curve_order import hilbert_key, hilbert_point, snake_cells
from splatpack.compress.quantise import quantise_channels, signed_log1p
from splatpack.core.errors import SplatpackError
from splatpack.spk.arrays import encode_array
from splatpack.spk.container import Section, SpkError, SpkReader


def test_hilbert_point_inverts_hilbert_key():
    rng = np.random.default_rng(0)
    for n, bits in ((3, 1), (3, 7), (3, 13), (3, 16), (2, 9), (3, 21)):
        pts = rng.integers(0, 1 << bits, (2000, n))
        assert np.array_equal(hilbert_point(hilbert_key(pts, bits), bits, n), pts)


def test_keys_nest_so_the_fine_order_sorts_every_coarser_key():
    q = np.random.default_rng(1).integers(0, 1 << 13, (3000, 3))
    fine = hilbert_key(q, 13)
    for r in (1, 3, 6):
        assert np.array_equal(fine >> np.uint64(3 * r), hilbert_key(q >> r, 13 - r))


def test_gap_streams_round_trip_with_ties_zero_and_48_bit_keys():
    rng = np.random.default_rng(2)
    keys = np.sort(rng.integers(0, 1 << 48, 5000, dtype=np.uint64))
    keys[:3] = 0  # leading zero gaps
    keys[100:110] = keys[100]  # ties
    keys[-1] = (1 << 48) - 1
    keys = np.sort(keys)
    lengths, packed = gap_streams(keys)
    assert lengths.max() <= 48 and len(packed) == (rest_bit_count(lengths) + 7) // 8
    assert np.array_equal(keys_from_streams(lengths, packed, 48), keys)
    one = np.array([5], np.uint64)  # a single key: gap 5 = 0b101, length 3, rest "01"
    lengths, packed = gap_streams(one)
    assert lengths.tolist() == [3] and packed.tolist() == [0b01000000]


@pytest.mark.parametrize(
    "lengths, packed, why",
    [
        ([49], [0] * 6, "more than 48"),
        ([3], [0b01100000], "padding"),
        ([30, 30], [0] * 8, "past the end"),
    ],
)
def test_damaged_streams_are_refused(lengths, packed, why):
    with pytest.raises(ValueError, match=why):
        keys_from_streams(np.array(lengths, np.uint8), np.array(packed, np.uint8), 48 if why != "past the end" else 30)


def test_scene_grid_lays_the_key_order_as_a_snake():
    gs = smooth_scene(n=300, seed=3, degree=0)
    cfg = GridCodecConfig.from_quality(6)
    assert cfg.means_encoding == "curve-keys"
    gi, _ = scene_grid(gs, cfg)
    order = curve_key_order(signed_log1p(gs.means.double().numpy()), cfg.means.bits)
    assert np.array_equal(gi.reshape(-1)[snake_cells(*gi.shape)[: len(gs)]], order)
    assert (gi.reshape(-1)[snake_cells(*gi.shape)[len(gs) :]] == -1).all()
    assert np.array_equal(GridCells.of(gi).snake, order)


def _sorted_rows(gs) -> np.ndarray:
    rows = torch.cat([gs.means, gs.scales, gs.quats, gs.opacities[:, None], gs.sh0.reshape(len(gs), -1)], 1).numpy()
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("quality, drop", [(0, 0.0), (6, 0.5), (10, 0.0)])
def test_keys_decode_to_the_gaussians_of_the_position_image(tmp_path, quality, drop):
    """The same quantised values either way (the grids differ in order only); the keys and their
    sections replace the position image."""
    gs = smooth_scene(n=500, seed=4, degree=1)
    files = {}
    for enc in ("grid", "curve-keys"):
        cfg = GridCodecConfig.from_quality(quality, means_encoding=enc, drop_fraction=drop)
        sections, meta = encode_grid_scene(gs, cfg)
        files[enc] = tmp_path / f"{enc}.spk"
        EncodedScene(sections, meta, len(gs)).write(files[enc])
    with SpkReader(files["curve-keys"]) as r:
        assert r.meta["attributes"]["means"]["encoding"] == "curve-keys"
        assert r.has("grid.means.lengths") and r.has("grid.means.rest") and not r.has("grid.means")
    a, b = read_grid_scene(files["grid"]), read_grid_scene(files["curve-keys"])
    if not drop:  # the dropped Gaussians differ with the order's ties of sensitivity
        np.testing.assert_array_equal(_sorted_rows(a), _sorted_rows(b))
    # positions on their quantisation lattice either way
    t = signed_log1p(gs.means.double().numpy())
    _, lo, hi = quantise_channels(t, GridCodecConfig.from_quality(quality).means.bits)
    assert (signed_log1p(b.means.double().numpy()) >= lo - 1e-6).all()
    assert (signed_log1p(b.means.double().numpy()) <= hi + 1e-6).all()


def test_keys_are_smaller_than_the_position_image_on_clustered_points():
    rng = np.random.default_rng(5)
    gs = smooth_scene(n=4000, seed=5, degree=0)
    centres = rng.normal(0, 2, (40, 3))
    gs.means = torch.from_numpy(
        (centres[rng.integers(0, 40, 4000)] + rng.normal(0, 0.05, (4000, 3))).astype(np.float32)
    )
    size = {}
    for enc in ("grid", "curve-keys"):
        sections, _ = encode_grid_scene(gs, GridCodecConfig.from_quality(6, means_encoding=enc))
        size[enc] = sum(len(s.payload) for s in sections if s.name.startswith("grid.means"))
    assert size["curve-keys"] < 0.95 * size["grid"], size


def test_a_grid_in_another_order_codes_positions_as_an_image(tmp_path):
    gs = smooth_scene(n=300, seed=6, degree=0)
    gi = np.arange(18 * 17).reshape(17, 18)
    gi[gi >= len(gs)] = -1
    sections, meta = encode_grid_scene(gs, GridCodecConfig.from_quality(6), grid_index=gi)
    assert "encoding" not in meta["attributes"]["means"] and any(s.name == "grid.means" for s in sections)


def test_curve_keys_need_the_curve_order():
    with pytest.raises(SplatpackError, match="curve-keys"):
        GridCodecConfig.from_quality(6, order="plas", means_encoding="curve-keys")
    assert GridCodecConfig.from_quality(6, order="plas").means_encoding == "grid"
    assert GridCodecConfig.from_quality("sog").means_encoding == "grid"


def test_empty_cells_off_the_snake_end_are_refused(tmp_path):
    gs = smooth_scene(n=300, seed=7, degree=0)
    sections, meta = encode_grid_scene(gs, GridCodecConfig.from_quality(6))
    h, w = meta["grid"]["height"], meta["grid"]["width"]
    assert h * w > len(gs)
    moved = np.array([0] + list(range(len(gs) + 1, h * w)), np.uint32)  # cell 0 empty instead
    sections = [
        Section("grid.empty", "deflate", encode_array(moved, "deflate")) if s.name == "grid.empty" else s
        for s in sections
    ]
    path = tmp_path / "moved.spk"
    EncodedScene(sections, meta, len(gs)).write(path)
    with pytest.raises(SpkError, match="end of the snake"):
        read_grid_scene(path)
