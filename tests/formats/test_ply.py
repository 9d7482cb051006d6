"""INRIA ``.ply`` (:mod:`splatpack.formats.ply`): exact round trip, the INRIA property layout,
the predicted file size, and bad files as one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from format_scenes import random_set
from plyfile import PlyData

from splatpack.core import SplatpackError
from splatpack.formats.ply import load_ply, ply_size, save_ply


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_ply_round_trip(tmp_path, degree):
    gs = random_set(100, degree=degree)
    path = save_ply(gs, tmp_path / "x.ply")
    back = load_ply(path)
    assert back.sh_degree == degree
    for name in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        assert torch.equal(getattr(gs, name), getattr(back, name)), name
    assert path.stat().st_size == ply_size(100, degree)


def test_ply_is_inria_layout(tmp_path):
    gs = random_set(5, degree=3)
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
    data = (save_ply(random_set(100, degree=3), tmp_path / "ok.ply")).read_bytes()
    (tmp_path / "trunc.ply").write_bytes(data[: len(data) // 2])
    with pytest.raises(SplatpackError, match=r"trunc\.ply.*truncated"):
        load_ply(tmp_path / "trunc.ply")
    forged = data.replace(b"element vertex 100", b"element vertex 1000000000")
    (tmp_path / "forged.ply").write_bytes(forged)
    with pytest.raises(SplatpackError, match="1000000000 vertices"):
        load_ply(tmp_path / "forged.ply")
