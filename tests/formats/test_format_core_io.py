"""Core helpers the format modules stand on (moved here from ``tests/test_io.py``): the atomic
write every writer uses (:mod:`splatpack.core.atomic`), and :meth:`GaussianSet.from_points`,
the scene a point cloud starts as."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splatpack.core import GaussianSet
from splatpack.core.atomic import atomic_write


def test_atomic_write_leaves_nothing_on_crash(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write(b"partial")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_from_points_scale_is_nn_distance():
    pts = np.stack(np.meshgrid(np.arange(4.0), np.arange(4.0), np.arange(4.0)), -1).reshape(-1, 3) * 0.5
    gs = GaussianSet.from_points(pts, np.full((64, 3), 128, np.uint8), sh_degree=1)
    assert torch.allclose(gs.linear_scales, torch.full((64, 3), 0.5), atol=1e-6)
    assert len(gs) == 64 and gs.sh_degree == 1
