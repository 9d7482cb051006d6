"""Where the grid codec puts each Gaussian (``splatpack.codecs.grid.sort``): PLAS on SOG's
features makes smaller files than random cells; unsorted keeps the input order."""

from __future__ import annotations

import numpy as np
from grid_scenes import one_numba_thread, smooth_scene

from splatpack.codecs.grid import (
    GridCodecConfig,
    encode_grid_scene,
    grid_attribute_bytes,
    read_grid_scene,
    sort_features,
    sort_scene,
    write_grid_scene,
)
from splatpack.compress.grid_sort import neighbour_distance


def test_sorting_makes_the_file_smaller():
    """PLAS vs the same Gaussians at random cells (1024 on a 32x32 grid): the images of a
    sorted grid are smooth, so the image codec predicts them better."""
    scene = smooth_scene(n=1024, seed=2)
    with one_numba_thread():
        grid, _ = sort_scene(scene)
    rng = np.random.default_rng(1)
    cells = np.full(grid.size, -1)
    cells[rng.permutation(grid.size)[: len(scene)]] = np.arange(len(scene))
    random_grid = cells.reshape(grid.shape)
    cfg = GridCodecConfig()
    sorted_sections, _ = encode_grid_scene(scene, cfg, grid_index=grid)
    random_sections, _ = encode_grid_scene(scene, cfg, grid_index=random_grid)
    s, r = grid_attribute_bytes(sorted_sections), grid_attribute_bytes(random_sections)
    total_s, total_r = sum(s.values()), sum(r.values())
    assert total_s < 0.8 * total_r, (s, r)
    for name in ("means", "sh0", "scales"):  # the sorted-by attributes
        assert s[name] < 0.85 * r[name], (name, s[name], r[name])
    # the neighbour distance PLAS minimises is smaller too
    feats = sort_features(scene, cfg.sort_weights)
    assert neighbour_distance(feats, grid) < 0.6 * neighbour_distance(feats, random_grid)


def test_encode_sorts_by_default_and_unsorted_keeps_input_order(tmp):
    gs = smooth_scene(n=40, seed=3, degree=0)
    with one_numba_thread():
        sections, meta = encode_grid_scene(gs)
    assert meta["sort"]["sorted"] and meta["sort"]["passes"] > 0 and meta["sh_degree"] == 0
    assert "grid.shN" not in [s.name for s in sections]
    path = tmp / "unsorted.spk"
    write_grid_scene(path, gs, GridCodecConfig(sort=False))
    dec = read_grid_scene(path)  # raster order = the input order
    assert dec.shN.shape == (40, 0, 3)
    assert float((dec.sh0 - gs.sh0).abs().max()) <= float(gs.sh0.max() - gs.sh0.min()) / 255 / 2 * 1.0001
