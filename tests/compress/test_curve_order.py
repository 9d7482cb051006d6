"""The space-filling-curve grid order (``splatpack.compress.curve_order``): the Hilbert index
visits every lattice point once with unit steps, the snake alternates row directions, and the
grid index holds every point once with curve neighbours as grid neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from splatpack.compress.curve_order import curve_grid_index, hilbert_key, hilbert_order, snake_cells


@pytest.mark.parametrize(("dims", "bits"), [(2, 3), (3, 2), (3, 3)])
def test_hilbert_key_is_a_unit_step_path_through_the_lattice(dims, bits):
    side = 1 << bits
    pts = np.stack(np.meshgrid(*[np.arange(side)] * dims, indexing="ij"), -1).reshape(-1, dims)
    key = hilbert_key(pts, bits)
    assert np.array_equal(np.sort(key), np.arange(side**dims, dtype=np.uint64))  # a bijection
    path = pts[np.argsort(key)]
    assert (np.abs(np.diff(path, axis=0)).sum(1) == 1).all()  # each step moves to a face neighbour
    with pytest.raises(ValueError, match="64 bits"):
        hilbert_key(pts, 22 if dims == 3 else 33)


def test_hilbert_order_keeps_curve_neighbours_close():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-3, 5, (4000, 3))
    order = hilbert_order(pts)
    assert np.array_equal(np.sort(order), np.arange(len(pts)))
    along = np.linalg.norm(np.diff(pts[order], axis=0), axis=1).mean()
    shuffled = np.linalg.norm(np.diff(pts, axis=0), axis=1).mean()
    assert along < 0.15 * shuffled  # uniform points: about a tenth
    assert np.array_equal(hilbert_order(pts), order)  # deterministic
    assert hilbert_order(np.zeros((5, 3))).tolist() == [0, 1, 2, 3, 4]  # one point: ties by index


def test_snake_and_grid_index():
    assert snake_cells(3, 4).tolist() == [0, 1, 2, 3, 7, 6, 5, 4, 8, 9, 10, 11]
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(50, 3))
    gi = curve_grid_index(pts, (6, 9))
    flat = gi.reshape(-1)
    assert gi.shape == (6, 9) and np.array_equal(np.sort(flat[flat >= 0]), np.arange(50))
    along_snake = flat[snake_cells(6, 9)]
    assert (along_snake[:50] == hilbert_order(pts)).all() and (along_snake[50:] == -1).all()
    with pytest.raises(ValueError, match="cannot hold"):
        curve_grid_index(pts, (5, 9))
