"""INRIA PLY round trip and bad files; atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splatpack.core.errors import SplatpackError
from splatpack.core.atomic import atomic_write
from splatpack.formats.ply import load_ply, save_ply
from splatpack.core import GaussianSet


def random_set(n=100, degree=3, seed=0) -> GaussianSet:
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianSet(
        means=torch.randn(n, 3, generator=g), quats=torch.randn(n, 4, generator=g),
        scales=torch.randn(n, 3, generator=g) - 3, opacities=torch.randn(n, generator=g),
        sh0=torch.randn(n, 1, 3, generator=g), shN=torch.randn(n, k - 1, 3, generator=g),
    )  # fmt: skip


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_ply_round_trip(tmp_path, degree):
    gs = random_set(degree=degree)
    path = save_ply(gs, tmp_path / "x.ply")
    back = load_ply(path)
    assert back.sh_degree == degree
    for name in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        assert torch.equal(getattr(gs, name), getattr(back, name)), name


def test_ply_is_inria_layout(tmp_path):
    from plyfile import PlyData

    gs = random_set(n=5)
    save_ply(gs, tmp_path / "x.ply")
    v = PlyData.read(str(tmp_path / "x.ply"))["vertex"]
    names = [p.name for p in v.properties]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[9:54] == [f"f_rest_{i}" for i in range(45)]
    assert names[54:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    # f_rest is channel-major: f_rest_0..14 are red's 15 higher-order coefficients
    assert np.allclose(v["f_rest_1"], gs.shN[:, 1, 0].numpy()) and np.allclose(v["f_rest_15"], gs.shN[:, 0, 1].numpy())


def test_ply_bad_files(tmp_path):
    with pytest.raises(SplatpackError, match="does not exist"):
        load_ply(tmp_path / "missing.ply")
    (tmp_path / "text.ply").write_text("hello")
    with pytest.raises(SplatpackError, match="not a PLY"):
        load_ply(tmp_path / "text.ply")
    data = (save_ply(random_set(), tmp_path / "ok.ply")).read_bytes()
    (tmp_path / "trunc.ply").write_bytes(data[: len(data) // 2])
    with pytest.raises(SplatpackError, match="trunc.ply.*truncated"):
        load_ply(tmp_path / "trunc.ply")
    forged = data.replace(b"element vertex 100", b"element vertex 1000000000")
    (tmp_path / "forged.ply").write_bytes(forged)
    with pytest.raises(SplatpackError, match="1000000000 vertices"):
        load_ply(tmp_path / "forged.ply")


def test_atomic_write_leaves_nothing_on_crash(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"partial")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_from_points_scale_is_nn_distance():
    pts = np.stack(np.meshgrid(np.arange(4.0), np.arange(4.0), np.arange(4.0)), -1).reshape(-1, 3) * 0.5
    gs = GaussianSet.from_points(pts, np.full((64, 3), 128, np.uint8), sh_degree=1)
    assert torch.allclose(gs.linear_scales, torch.full((64, 3), 0.5), atol=1e-6)
    assert len(gs) == 64 and gs.sh_degree == 1
