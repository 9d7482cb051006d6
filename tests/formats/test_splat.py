"""antimatter15 ``.splat`` (:mod:`splatpack.formats.splat`): round trip within its 8-bit
quantisation, the 32-byte record layout, and the real sample ``../shared/splats/plant.splat``."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from format_scenes import max_err, min_quat_dot, np_, random_set, unit

from splatpack.core.sh import SH_C0
from splatpack.formats import load_scene
from splatpack.formats.splat import load_splat, save_splat


def test_splat_round_trip(tmp_path):
    """Tolerances: positions exact; scales exact up to f32 exp/log (1e-5 in log space); colour
    0.5/255 in rgb where 0 ≤ rgb ≤ 1; alpha 0.5/255; rotation: each component of q·128+128
    rounded (and +1 clipped to 255/256), so |⟨q, q'⟩| ≥ 0.9998; higher SH dropped."""
    gs = random_set(500, degree=2)
    back = load_splat(save_splat(gs, tmp_path / "x.splat"))
    assert (tmp_path / "x.splat").stat().st_size == 32 * 500
    assert len(back) == 500 and back.sh_degree == 0
    assert torch.equal(back.means, gs.means)
    assert max_err(back.scales, gs.scales) < 1e-5
    rgb, rgb_back = 0.5 + SH_C0 * np_(gs.sh0), 0.5 + SH_C0 * np_(back.sh0)
    inside = (rgb >= 0) & (rgb <= 1)
    assert inside.mean() > 0.9 and max_err(rgb[inside], rgb_back[inside]) <= 0.5 / 255 + 1e-6
    assert max_err(np.clip(rgb, 0, 1), rgb_back) <= 0.5 / 255 + 1e-6  # out-of-range colours clip
    assert max_err(torch.sigmoid(gs.opacities), torch.sigmoid(back.opacities)) <= 0.5 / 255 + 1e-6
    assert min_quat_dot(gs.quats, back.quats) >= 0.9998


def test_splat_record_layout(tmp_path):
    gs = random_set(3)
    data = (save_splat(gs, tmp_path / "x.splat")).read_bytes()
    rec = data[:32]
    assert struct.unpack("<3f", rec[:12]) == tuple(gs.means[0].tolist())
    assert np.allclose(struct.unpack("<3f", rec[12:24]), torch.exp(gs.scales[0]).numpy(), rtol=1e-6)
    rgba = np.frombuffer(rec[24:28], np.uint8)
    alpha = torch.sigmoid(gs.opacities[0]).item()
    expect = np.clip(np.rint(255 * np.r_[0.5 + SH_C0 * np_(gs.sh0[0, 0]), alpha]), 0, 255)
    assert np.array_equal(rgba, expect)
    rot = np.frombuffer(rec[28:32], np.uint8)
    assert np.array_equal(rot, np.clip(np.rint(np_(unit(gs.quats)[0]) * 128 + 128), 0, 255))  # w first


def test_real_plant_splat(shared_dir, tmp_path):
    path = shared_dir / "splats" / "plant.splat"
    if not path.is_file():
        pytest.skip(f"{path} is absent (real-data test)")
    gs = load_scene(path)
    assert len(gs) == 113_648 and gs.sh_degree == 0
    assert all(torch.isfinite(t).all() for t in (gs.means, gs.scales, gs.quats, gs.opacities, gs.sh0))
    raw = np.frombuffer(path.read_bytes(), np.uint8).reshape(-1, 32)
    again = np.frombuffer(save_splat(gs, tmp_path / "p.splat").read_bytes(), np.uint8).reshape(-1, 32)
    assert np.array_equal(raw[:, :12], again[:, :12]) and np.array_equal(raw[:, 24:28], again[:, 24:28])
