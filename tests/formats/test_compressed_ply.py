"""PlayCanvas compressed PLY (:mod:`splatpack.formats.compressed_ply`, read only): files written
by gsply read back within the format's quantisation, and a 12-property chunk packed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from format_scenes import gsply_data, max_err, min_quat_dot, np_, random_set

from splatpack.core.sh import SH_C0
from splatpack.formats import detect_format, load_scene
from splatpack.formats.compressed_ply import load_compressed_ply

gsply = pytest.importorskip("gsply")


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_compressed_ply_matches_gsply_and_quantisation(tmp_path, degree):
    """gsply writes PlayCanvas's layout (chunks of 256, input order). Tolerances: ours equals
    gsply's reader to 1e-5; against the input, positions and scales within half a step of the
    chunk's range (11-10-11 bits), colour half a step of 8 bits of the chunk's colour range,
    alpha 0.5/255, rotations 10-bit smallest three (|⟨q,q'⟩| ≥ 0.99999), SH 8 bits over [−4, 4]."""
    gs = random_set(600, degree=degree, seed=11)
    gsply.plywrite(tmp_path / "x.compressed.ply", gsply_data(gs), compressed=True)
    path = tmp_path / "x.compressed.ply"
    assert detect_format(path).name == "compressed-ply"
    ours, theirs = load_scene(path), gsply.plyread(path)
    assert len(ours) == 600 and ours.sh_degree == degree
    for name in ("means", "scales", "quats"):
        assert max_err(getattr(ours, name), getattr(theirs, name)) < 1e-5, name
    assert max_err(ours.sh0[:, 0], theirs.sh0) < 1e-5
    chunks = np.arange(600) // 256
    for name, bits in [("means", (11, 10, 11)), ("scales", (11, 10, 11))]:
        x = np_(getattr(gs, name))
        lo = np.stack([x[chunks == c].min(0) for c in range(3)])
        hi = np.stack([x[chunks == c].max(0) for c in range(3)])
        step = (hi - lo)[chunks] / (2.0 ** np.array(bits) - 1)
        assert (np.abs(np_(getattr(ours, name)) - x) <= step / 2 + 1e-5).all(), name
    rgb = 0.5 + SH_C0 * np_(gs.sh0[:, 0])
    span = np.stack([np.ptp(rgb[chunks == c], axis=0) for c in range(3)])[chunks]
    assert (np.abs(0.5 + SH_C0 * np_(ours.sh0[:, 0]) - rgb) <= span / 255 / 2 + 1e-5).all()
    assert max_err(torch.sigmoid(ours.opacities), torch.sigmoid(gs.opacities)) <= 0.5 / 255 + 1e-6
    assert min_quat_dot(ours.quats, gs.quats) >= 0.99999
    if degree:
        assert max_err(ours.shN, gs.shN) <= 8 / 256 + 1e-6


def test_compressed_ply_hand_packed_without_chunk_colours(tmp_path):
    """A 12-property chunk (absolute colours, as older SuperSplat files) packed by hand from the spec."""
    props = [
        "min_x",
        "min_y",
        "min_z",
        "max_x",
        "max_y",
        "max_z",
        "min_scale_x",
        "min_scale_y",
        "min_scale_z",
        "max_scale_x",
        "max_scale_y",
        "max_scale_z",
    ]
    packed = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
    header = (
        "ply\nformat binary_little_endian 1.0\nelement chunk 1\n"
        + "".join(f"property float {p}\n" for p in props)
        + "element vertex 2\n"
        + "".join(f"property uint {p}\n" for p in packed)
        + "end_header\n"
    )
    chunk = np.array([-1, -2, -3, 1, 2, 3, -5, -5, -5, -1, -1, -1], "<f4")
    pos = [(0 << 21) | (1023 << 11) | 1024, (2047 << 21) | (0 << 11) | 0]
    # rotation: largest index 0 (rot_0 = w), the others 0.5·√2/2 + 0.5 etc. in 10 bits
    rot = [(0 << 30) | (512 << 20) | (512 << 10) | 512, (3 << 30) | (1023 << 20) | (0 << 10) | 512]
    scl = [(2047 << 21) | (1023 << 11) | 2047, 0]
    col = [(255 << 24) | (0 << 16) | (128 << 8) | 255, (10 << 24) | (20 << 16) | (30 << 8) | 0]
    vert = np.array(list(zip(pos, rot, scl, col)), "<u4")
    (tmp_path / "h.compressed.ply").write_bytes(header.encode() + chunk.tobytes() + vert.tobytes())
    gs = load_compressed_ply(tmp_path / "h.compressed.ply")
    assert np.allclose(np_(gs.means[0]), [-1, 2, -3 + 6 * 1024 / 2047], atol=1e-6)
    assert np.allclose(np_(gs.means[1]), [1, -2, -3], atol=1e-6)
    assert np.allclose(np_(gs.scales), [[-1, -1, -1], [-5, -5, -5]], atol=1e-6)
    assert np.allclose(np_(gs.sh0[0, 0]), (np.array([255, 0, 128]) / 255 - 0.5) / SH_C0, atol=1e-5)
    assert np.allclose(np_(torch.sigmoid(gs.opacities)), [1 - 1e-6, 1e-6], atol=1e-6)
    v = (512 / 1023 - 0.5) * math.sqrt(2)
    assert min_quat_dot(gs.quats[:1], torch.tensor([[math.sqrt(1 - 3 * v * v), v, v, v]])) > 1 - 1e-9
    a, c = 0.5 * math.sqrt(2), (512 / 1023 - 0.5) * math.sqrt(2)
    assert min_quat_dot(gs.quats[1:], torch.tensor([[a, -a, c, math.sqrt(max(0, 1 - 2 * a * a - c * c))]])) > 1 - 1e-6
