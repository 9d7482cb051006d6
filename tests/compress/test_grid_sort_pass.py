"""One PLAS pass (:func:`splatpack.compress.grid_sort.reorder_pass`) against a direct
computation: blocks at an offset that wraps around both borders, each group of four taking the
first of the cheapest permutations, and the energy it returns."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from splatpack.compress.grid_sort import PERMUTATIONS, reorder_pass


def direct_pass(grid, idx, target, bs, sy, sx, groups):
    """The pass written out: cell (y, x) of block (by, bx) is ((by·bs + y + sy) mod H, …)."""
    H, W, _ = grid.shape
    grid, idx, total = grid.copy(), idx.copy(), 0.0
    for by, bx in itertools.product(range(H // bs), range(W // bs)):
        for group in groups:
            cells = [((by * bs + c // bs + sy) % H, (bx * bs + c % bs + sx) % W) for c in group]
            cost = [[float(((grid[e] - target[c]) ** 2).sum(dtype=np.float64)) for c in cells] for e in cells]
            sums = [sum(cost[p[c]][c] for c in range(4)) for p in PERMUTATIONS]
            best = int(np.argmin(sums))
            total += sums[best]
            vals, ids = [grid[e].copy() for e in cells], [idx[e] for e in cells]
            for c, e in enumerate(PERMUTATIONS[best]):
                grid[cells[c]], idx[cells[c]] = vals[e], ids[e]
    return grid, idx, total


@pytest.mark.parametrize("bs, sy, sx", [(4, 3, 3), (4, 0, 0), (6, 5, 1), (10, 9, 7)])
def test_a_pass_is_the_direct_computation(bs, sy, sx):
    rng = np.random.default_rng(bs + sy)
    H, W = 10, 13
    grid = rng.random((H, W, 3)).astype(np.float32)
    target = rng.random((H, W, 3)).astype(np.float32)
    idx = np.arange(H * W, dtype=np.int64).reshape(H, W)
    groups = rng.permutation(bs * bs).reshape(-1, 4).astype(np.int64)
    want_grid, want_idx, want_total = direct_pass(grid, idx, target, bs, sy, sx, groups)
    total = reorder_pass(grid, idx, target, bs, sy, sx, groups, PERMUTATIONS)
    assert np.array_equal(idx, want_idx) and np.array_equal(grid, want_grid)
    assert total == pytest.approx(want_total, rel=1e-12)
    assert not np.array_equal(idx, np.arange(H * W).reshape(H, W))  # the pass moved something
