"""Sort Gaussians into a smooth 2D grid: Parallel Linear Assignment Sorting (PLAS), from
Morgenstern et al., "Compact 3D Scene Representation via Self-Organizing Gaussian Grids"
(ECCV 2024), §3.2.

Each Gaussian is a vector a_i of normalised, weighted attributes (SOG: position, colour DC,
scale). PLAS places them on an H×W grid so that neighbours are similar, which is what makes
each attribute plane compress as an image. It minimises the distance of every cell to a
blurred copy of the grid,

    E = Σ_c ‖g(c) − (K_r * g)(c)‖²,

with a blur radius r that shrinks from half the grid side by ``radius_decay`` down to 1. For each r the
grid is cut into blocks (side ≈ 2r + 2, at least 16, at a random offset); inside every block the
cells are dealt into random groups of four, and each group takes the best of the 24
permutations of its four elements over its four cells (an exact linear assignment of size 4),
all groups in parallel. Passes repeat while E improves by at least ``improvement_break``
relative (at most ``max_passes_per_config``), over at least ``min_block_configs`` block offsets
per radius (:class:`GridSortConfig` gives the reference's settings and ours).

The reference implementation (``fraunhoferhhi/PLAS``) is CUDA-only and not on PyPI; this is our
own, as numba kernels over both cores. Differences: the blur is a box filter of the same width
computed with running sums (the reference uses a Gaussian with σ equal to the kernel size, which
is nearly a box), x wraps around and y reflects at the borders as in the reference, and grids
need not be square: N Gaussians go on an H×W grid with H·W ≥ N, the spare cells (fewer than one
row) holding neutral "empty" elements at the attributes' mean, reported as −1.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numba
import numpy as np

PERMUTATIONS = np.array(list(itertools.permutations(range(4))), dtype=np.int64)  # [24, 4]


@dataclass
class GridSortConfig:
    """PLAS settings. The reference's (GPU) are radius decay 0.95, improvement break 1e-5 and
    passes until no gain, which take minutes on two CPU cores; the defaults here trade a little
    order for speed (``benchmarks/grid_sort.py`` measures the trade)."""

    min_block_size: int = 16
    min_radius: float = 1.0
    radius_decay: float = 0.9
    improvement_break: float = 3e-3  # relative improvement of E that ends a block offset
    min_block_configs: int = 1  # block offsets tried per radius before giving up
    max_passes_per_config: int = 6
    seed: int = 0


def grid_shape(n: int) -> tuple[int, int]:
    """(H, W) with W = ⌈√n⌉ and H = ⌈n / W⌉: fewer than W empty cells, never a dropped Gaussian."""
    if n <= 0:
        raise ValueError("cannot sort an empty set into a grid")
    w = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / w), w


@numba.njit(cache=True, parallel=True)
def box_blur(grid: np.ndarray, r: int) -> np.ndarray:
    """Box filter of width 2r+1 (clipped to the grid): x circular, y reflected. [H, W, D]."""
    H, W, D = grid.shape
    rx = min(r, (W - 1) // 2)
    ry = min(r, H - 1)
    tmp = np.empty_like(grid)
    for y in numba.prange(H):  # along x, circular, running sum
        acc = np.zeros(D, np.float64)
        for k in range(-rx, rx + 1):
            xx = k % W
            for d in range(D):
                acc[d] += grid[y, xx, d]
        inv = 1.0 / (2 * rx + 1)
        for x in range(W):
            for d in range(D):
                tmp[y, x, d] = acc[d] * inv
            xo = (x - rx) % W
            xi = (x + rx + 1) % W
            for d in range(D):
                acc[d] += grid[y, xi, d] - grid[y, xo, d]
    out = np.empty_like(grid)
    inv = 1.0 / (2 * ry + 1)
    for x in numba.prange(W):  # along y, reflected (… 2 1 | 0 1 2 … H−1 | H−2 …)
        acc = np.zeros(D, np.float64)
        for k in range(-ry, ry + 1):
            yy = abs(k)
            if yy > H - 1:
                yy = 2 * (H - 1) - yy
            for d in range(D):
                acc[d] += tmp[yy, x, d]
        for y in range(H):
            for d in range(D):
                out[y, x, d] = acc[d] * inv
            yo = y - ry
            yo = -yo if yo < 0 else yo
            yo = 2 * (H - 1) - yo if yo > H - 1 else yo
            yi = y + ry + 1
            yi = -yi if yi < 0 else yi
            yi = 2 * (H - 1) - yi if yi > H - 1 else yi
            for d in range(D):
                acc[d] += tmp[yi, x, d] - tmp[yo, x, d]
    return out


@numba.njit(cache=True)
def _sqdist(a: np.ndarray, b: np.ndarray) -> float:
    s = 0.0
    for d in range(a.shape[0]):
        t = a[d] - b[d]
        s += t * t
    return s


@numba.njit(cache=True, parallel=True)
def reorder_pass(grid, idx, target, bs, sy, sx, groups, perms) -> float:
    """One PLAS pass: in every bs×bs block (offset sy, sx) each group of four in-block cells
    takes the best permutation of its elements. Returns E over the blocks after the pass."""
    H, W, D = grid.shape
    nby, nbx = H // bs, W // bs
    ng = groups.shape[0]
    gy = np.empty((ng, 4), np.int64)  # each group's cells in a block, shifted by the offset: once
    gx = np.empty((ng, 4), np.int64)  # per pass, not a division and a modulo per cell and block
    for g in range(ng):
        for k in range(4):
            gy[g, k] = groups[g, k] // bs + sy
            gx[g, k] = groups[g, k] % bs + sx
    totals = np.zeros(nby * nbx, np.float64)
    for b in numba.prange(nby * nbx):
        by, bx = b // nbx, b % nbx
        cost = np.empty((4, 4), np.float64)
        ys = np.empty(4, np.int64)
        xs = np.empty(4, np.int64)
        vals = np.empty((4, D), grid.dtype)
        ids = np.empty(4, idx.dtype)
        tot = 0.0
        for g in range(ng):
            for k in range(4):
                y = by * bs + gy[g, k]  # < 2H and < 2W: one subtraction wraps
                x = bx * bs + gx[g, k]
                ys[k] = y - H if y >= H else y
                xs[k] = x - W if x >= W else x
            for e in range(4):  # element e (now at cell e) to cell c
                for c in range(4):
                    cost[e, c] = _sqdist(grid[ys[e], xs[e]], target[ys[c], xs[c]])
            best, bp = 1e300, 0
            for p in range(perms.shape[0]):  # perms[p][c] = element placed at cell c
                s = cost[perms[p, 0], 0] + cost[perms[p, 1], 1] + cost[perms[p, 2], 2] + cost[perms[p, 3], 3]
                if s < best:
                    best, bp = s, p
            tot += best
            if bp != 0:
                for k in range(4):
                    vals[k] = grid[ys[k], xs[k]]
                    ids[k] = idx[ys[k], xs[k]]
                for c in range(4):
                    e = perms[bp, c]
                    grid[ys[c], xs[c]] = vals[e]
                    idx[ys[c], xs[c]] = ids[e]
        totals[b] = tot
    return totals.sum()


@numba.njit(cache=True)
def block_energy(grid, target, bs, sy, sx) -> float:
    H, W, D = grid.shape
    tot = 0.0
    for y in range((H // bs) * bs):
        for x in range((W // bs) * bs):
            yy, xx = (y + sy) % H, (x + sx) % W
            tot += _sqdist(grid[yy, xx], target[yy, xx])
    return tot


def radii(side: int, cfg: GridSortConfig) -> list[int]:
    out, r = [], max(side / 2 - 1, cfg.min_radius)
    while r >= cfg.min_radius:
        out.append(int(r))
        r *= cfg.radius_decay
    return out


def z_curve_cells(H: int, W: int) -> np.ndarray:
    """The cells of an H×W grid (row-major indices) in 2D Z-curve (Morton) order."""
    y, x = np.divmod(np.arange(H * W, dtype=np.int64), W)
    key = np.zeros(H * W, dtype=np.int64)
    for b in range(max(H, W).bit_length()):
        key |= ((x >> b) & 1) << (2 * b) | ((y >> b) & 1) << (2 * b + 1)
    return np.argsort(key, kind="stable")


def sort_into_grid(
    attributes: np.ndarray,
    shape: tuple[int, int] | None = None,
    cfg: GridSortConfig | None = None,
    progress=None,
    init_order: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """PLAS: an H×W arrangement of the rows of ``attributes`` [N, D] (already normalised and
    weighted). Returns (``grid_index`` [H, W] int64: the row at each cell, −1 for an empty cell,
    stats). Every row appears exactly once.

    ``init_order`` (a permutation of the rows, e.g. their 3D Morton order) starts PLAS from those
    rows laid along a 2D Z-curve, so 1D neighbours start as 2D neighbours; the default is a random
    start, as the reference."""
    cfg = cfg or GridSortConfig()
    a = np.ascontiguousarray(attributes, dtype=np.float32)
    n, d = a.shape
    H, W = shape or grid_shape(n)
    if n > H * W:
        raise ValueError(f"a {H}×{W} grid cannot hold {n} Gaussians")
    rng = np.random.default_rng(cfg.seed)
    fill = np.concatenate([a, np.repeat(a.mean(0, keepdims=True), H * W - n, 0)]) if n < H * W else a
    if init_order is None:
        start = rng.permutation(H * W)  # random start, as the reference
    else:
        order = np.asarray(init_order, dtype=np.int64)
        if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
            raise ValueError("init_order must be a permutation of the rows")
        start = np.empty(H * W, dtype=np.int64)
        start[z_curve_cells(H, W)] = np.concatenate([order, np.arange(n, H * W)])  # empties last
    grid = fill[start].reshape(H, W, d).copy()
    idx = np.where(start < n, start, -1).astype(np.int64).reshape(H, W)
    t0 = time.perf_counter()
    passes = 0
    side = min(H, W)
    for r in radii(max(H, W), cfg):
        target = box_blur(grid, r)
        bs = min(max(2 * r + 2, cfg.min_block_size), side)
        bs = max(2, bs // 2 * 2)
        configs = 0
        while True:
            sy, sx = int(rng.integers(0, bs)), int(rng.integers(0, bs))
            prev = block_energy(grid, target, bs, sy, sx)
            improved = False
            for _ in range(cfg.max_passes_per_config):
                groups = rng.permutation(bs * bs).reshape(-1, 4).astype(np.int64)
                cur = reorder_pass(grid, idx, target, bs, sy, sx, groups, PERMUTATIONS)
                passes += 1
                gain = 0.0 if prev == 0 else 1 - cur / prev
                prev = cur
                if gain < cfg.improvement_break:
                    break
                improved = True
            configs += 1
            if not improved and configs >= cfg.min_block_configs:
                break
        if progress is not None:
            progress(r)
    stats = {"seconds": time.perf_counter() - t0, "passes": passes, "shape": (H, W), "empty": H * W - n}
    return idx, stats


def sort_features(groups: dict, weights: dict[str, float]) -> np.ndarray:
    """The vectors PLAS sorts (SOG's normalisation): each weighted attribute group [N, ...],
    minus its mean and divided by its standard deviation over the whole group (one scale per
    group, so the group's channels keep their relative sizes), times its weight. SOG sorts on
    position, colour DC and scale with weight 1 each. Groups with weight 0, absent or empty are
    skipped. Returns float32 [N, D]."""
    cols = []
    for name, w in weights.items():
        if not w or name not in groups:
            continue
        g = groups[name]
        a = (g.detach().cpu().numpy() if hasattr(g, "detach") else np.asarray(g)).astype(np.float64)
        a = a.reshape(a.shape[0], -1)
        if a.shape[1] == 0:
            continue
        a = a - a.mean()
        std = a.std()
        cols.append(float(w) * (a / std if std > 0 else a))
    if not cols:
        raise ValueError(f"no attribute to sort on (weights {weights}, groups {sorted(groups)})")
    return np.ascontiguousarray(np.concatenate(cols, 1), dtype=np.float32)


def neighbour_distance(attributes: np.ndarray, grid_index: np.ndarray) -> float:
    """Mean L2 distance between horizontally and vertically adjacent occupied cells (the
    paper's sorting-quality measure)."""
    a = np.asarray(attributes, np.float32)
    occ = grid_index >= 0
    g = np.zeros(grid_index.shape + (a.shape[1],), np.float32)
    g[occ] = a[grid_index[occ]]
    dx = np.linalg.norm(g[:, 1:] - g[:, :-1], axis=-1)[occ[:, 1:] & occ[:, :-1]]
    dy = np.linalg.norm(g[1:] - g[:-1], axis=-1)[occ[1:] & occ[:-1]]
    return float(np.concatenate([dx, dy]).mean())
