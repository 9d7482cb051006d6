"""Fixtures of the grid-scene codec tests (``test_grid_*.py``): a small smooth scene, its PLAS
grid, and a module-wide temporary folder (helpers: ``tests/grid_scenes.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from grid_scenes import one_numba_thread, smooth_scene

from splatpack.codecs.grid import sort_scene
from splatpack.core import GaussianSet


@pytest.fixture(scope="module")
def scene() -> GaussianSet:
    return smooth_scene()


@pytest.fixture(scope="module")
def grid(scene) -> np.ndarray:
    with one_numba_thread():
        gi, stats = sort_scene(scene)
    assert stats["passes"] > 0 and gi.shape == (17, 18)
    return gi


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("grid")
