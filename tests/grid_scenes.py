"""Helpers and fixtures for the grid-scene codec tests (``tests/codecs/test_grid_*.py``): small
synthetic scenes (a few hundred Gaussians, SH degree 3 so that SH rest is a 15-tile mosaic),
their PLAS grid, and comparisons of decoded scenes. The fixtures ``scene``, ``grid`` and ``tmp``
are in ``tests/codecs/conftest.py``."""

from __future__ import annotations

from contextlib import contextmanager

import numba
import numpy as np
import torch

from splatpack.codecs.grid import AttributeCoding, GridCodecConfig
from splatpack.codecs.grid.values import coded_values
from splatpack.core import GaussianSet

FIELDS = ("means", "quats", "scales", "opacities", "sh0", "shN")
LOSSLESS = ("jxl", "png", "webp", "ans")


@contextmanager
def one_numba_thread():
    """PLAS's kernels are many tiny parallel passes: on a busy 2-core machine one thread is
    far faster (``set_num_threads`` is per calling thread; restored after)."""
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def smooth_scene(n: int = 300, seed: int = 0, degree: int = 3) -> GaussianSet:
    """Gaussians on a sphere whose attributes vary smoothly with position, in random order."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    p = v / np.linalg.norm(v, axis=1, keepdims=True)
    means = 1.5 * p + np.array([0.3, -0.2, 0.1])
    k = (degree + 1) ** 2 - 1
    freq = np.arange(1, k + 1)[None, :, None]
    axis_angle = 0.8 * p
    angle = np.linalg.norm(axis_angle, axis=1, keepdims=True)
    quats = np.concatenate([np.cos(angle / 2), np.sin(angle / 2) * axis_angle / angle], axis=1)
    quats[::3] *= -1.7  # not unit, some with w < 0
    return GaussianSet(
        means=torch.tensor(means, dtype=torch.float32),
        quats=torch.tensor(quats, dtype=torch.float32),
        scales=torch.tensor(-4.0 + 0.6 * p + 0.2 * p[:, ::-1], dtype=torch.float32),
        opacities=torch.tensor(3.0 * p[:, 2] + 1.0, dtype=torch.float32),
        sh0=torch.tensor(0.9 * np.sin(2.0 * p)[:, None, :], dtype=torch.float32),
        shN=torch.tensor(0.15 * np.cos(freq * p[:, None, :]) / freq, dtype=torch.float32),
    )


def raster_order(gi: np.ndarray) -> torch.Tensor:
    flat = gi.reshape(-1)
    return torch.from_numpy(flat[flat >= 0])


def coded(gs: GaussianSet, opacity_space: str = "logit") -> dict[str, np.ndarray]:
    return coded_values(gs, GridCodecConfig(opacity_space=opacity_space))


def all_lossless(codec: str, **kw) -> GridCodecConfig:
    bits = {"means": 14, "sh0": 8, "shN": 5, "scales": 6, "quats": 6, "opacities": 6}
    return GridCodecConfig(**{a: AttributeCoding(b, codec) for a, b in bits.items()}, **kw)


def same(a: GaussianSet, b: GaussianSet) -> bool:
    return all(getattr(a, f).dtype == getattr(b, f).dtype and torch.equal(getattr(a, f), getattr(b, f)) for f in FIELDS)
