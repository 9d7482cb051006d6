"""Step 2 of the grid codec: where each Gaussian sits on the grid (SOG, Morgenstern et al., ECCV
2024, §3.2).

The sort features [N, D] are the weighted blocks w_a·(g_a(x) − μ_a)/σ_a, with g_a the
*activated* attribute (world position, DC colour, linear scale; μ_a, σ_a the mean and standard
deviation over the whole block, as SOG's ``normalize``); SOG's weights are 1 for position,
colour DC and scale. PLAS (:func:`splatpack.compress.grid_sort.sort_into_grid`) then returns the
grid index [H, W] (−1 = empty, fewer than W cells).
"""

from __future__ import annotations

import time

import numpy as np

from splatpack.codecs.grid.config import ATTRIBUTES, GridCodecConfig
from splatpack.codecs.grid.curve_keys import curve_key_order
from splatpack.codecs.grid.values import coded_positions, float64_numpy, resolved_positions
from splatpack.compress.curve_order import curve_grid_index, snake_grid_index
from splatpack.compress.grid_sort import GridSortConfig, grid_shape, sort_into_grid
from splatpack.compress.grid_sort import sort_features as normalised_features
from splatpack.compress.quantise import signed_log1p, unit_quats_w_positive
from splatpack.core.errors import SplatpackError

__all__ = ["sort_features", "sort_groups", "sort_scene"]


def sort_groups(gs, weights: dict[str, float], activated: bool = True) -> dict[str, np.ndarray]:
    """The attribute groups SOG sorts on, [N, C] each. ``activated``: the world position, linear
    scale, α and unit quaternion (SOG's ``activated: true``) instead of the stored parameters."""
    n = len(gs)
    out = {}
    for name in ATTRIBUTES:
        if float(weights.get(name, 0.0)) <= 0:
            continue
        if name == "means":
            g = float64_numpy(gs.means) if activated else signed_log1p(float64_numpy(gs.means))
        elif name == "scales":
            g = np.exp(float64_numpy(gs.scales)) if activated else float64_numpy(gs.scales)
        elif name == "opacities":
            o = float64_numpy(gs.opacities).reshape(n, 1)
            g = 1.0 / (1.0 + np.exp(-o)) if activated else o
        elif name == "quats":
            g = unit_quats_w_positive(float64_numpy(gs.quats))
        else:
            g = float64_numpy(getattr(gs, name)).reshape(n, -1)
        out[name] = g
    return out


def sort_features(gs, weights: dict[str, float], activated: bool = True) -> np.ndarray:
    """SOG's sort features [N, D] float32 of ``gs``: :func:`sort_groups` normalised and weighted
    by :func:`splatpack.compress.grid_sort.sort_features`."""
    try:
        return normalised_features(sort_groups(gs, weights, activated), weights)
    except ValueError:
        raise SplatpackError("grid codec: sort_weights select no attribute") from None


def sort_scene(gs, cfg: GridCodecConfig | None = None, sort_config=None, means_range=None) -> tuple[np.ndarray, dict]:
    """The grid index [H, W] (−1 = empty) of ``gs``: PLAS on :func:`sort_features`, or with
    ``cfg.order`` "hilbert" the positions' Hilbert curve laid as a snake
    (:func:`~splatpack.compress.curve_order.curve_grid_index`; with ``means_encoding``
    "curve-keys" the curve of the quantised coded positions, the order their keys are coded in:
    :func:`~.curve_keys.curve_key_order`), or the input order in raster order when ``cfg.sort``
    is False (or N < 16). ``means_range``: the (lo, hi) the coded positions are quantised over
    instead of their own (:func:`~.encode.lattice_ranges`). Returns (grid_index, stats)."""
    cfg = (cfg or GridCodecConfig()).validate()
    n = len(gs)
    if n == 0:
        raise SplatpackError("cannot encode an empty scene as a grid")
    h, w = grid_shape(n)
    if cfg.means_encoding == "curve-keys":
        t0 = time.perf_counter()
        cfg = resolved_positions(gs, cfg)
        order = curve_key_order(coded_positions(float64_numpy(gs.means), cfg), cfg.means.bits, means_range)
        gi = snake_grid_index(order, (h, w))
        return gi, {"seconds": time.perf_counter() - t0, "passes": 0, "shape": (h, w), "empty": h * w - n}
    if not cfg.sort or n < 16:
        idx = np.arange(h * w)
        stats = {"seconds": 0.0, "passes": 0, "shape": (h, w), "empty": h * w - n}
        return np.where(idx < n, idx, -1).reshape(h, w), stats
    if cfg.order == "hilbert":
        t0 = time.perf_counter()
        gi = curve_grid_index(float64_numpy(gs.means), (h, w))
        return gi, {"seconds": time.perf_counter() - t0, "passes": 0, "shape": (h, w), "empty": h * w - n}
    feats = sort_features(gs, cfg.sort_weights, cfg.sort_activated)
    sort_cfg = sort_config or GridSortConfig(seed=cfg.seed)
    return sort_into_grid(feats, (h, w), sort_cfg)
