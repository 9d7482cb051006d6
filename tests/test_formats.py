"""Ecosystem splat formats: antimatter15 .splat, Niantic SPZ, PlayCanvas compressed PLY and SOG.

Round trips are checked against each format's quantisation (the tolerance of every attribute
is stated next to its test), our SPZ/SOG output against gsply's readers, our readers against
files written by gsply (SPZ v3, compressed PLY) and sogpy (SOG), the two real samples in
``../shared/splats`` when present, and bad input: truncation, byte flips and forged counts
(property-based, several hundred cases), a 10⁹-Gaussian header and compression bombs.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splatpack.core.errors import SplatpackError
from splatpack.formats import detect_format, load_scene, save_scene
from splatpack.formats.ply import save_ply
from splatpack.formats.compressed_ply import load_compressed_ply
from splatpack.formats.sog import encode_sog, kmeans_1d, load_sog, morton_order, save_sog, texture_size
from splatpack.formats.splat import SH_C0, load_splat, save_splat
from splatpack.formats.spz import SH_FLIP, flip_axes, load_spz, save_spz
from splatpack.core import GaussianSet
from splatpack.core.sh import eval_sh_bases

gsply = pytest.importorskip("gsply")

FUZZ = settings(
    max_examples=40, deadline=3000, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip


# ---- helpers -------------------------------------------------------------------------------------
def random_set(n: int = 300, degree: int = 0, seed: int = 0, pos_scale: float = 1.0, sh_scale: float = 0.3) -> GaussianSet:
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianSet(
        means=torch.randn(n, 3, generator=g) * pos_scale, quats=torch.randn(n, 4, generator=g),
        scales=torch.randn(n, 3, generator=g) * 0.7 - 4, opacities=torch.randn(n, generator=g) * 2,
        sh0=torch.randn(n, 1, 3, generator=g) * 0.8, shN=torch.randn(n, k - 1, 3, generator=g) * sh_scale,
    )  # fmt: skip


def unit(q: torch.Tensor) -> torch.Tensor:
    return q / q.norm(dim=1, keepdim=True)


def min_quat_dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """Smallest |⟨â, b̂⟩| (1 = same rotation; q and −q are the same rotation)."""
    return (unit(a.double()) * unit(b.double())).sum(1).abs().min().item()


def max_err(a, b) -> float:
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return float(d.max()) if d.size else 0.0


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def rotation_matrices(q: torch.Tensor) -> torch.Tensor:
    w, x, y, z = unit(q.double()).unbind(1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=1).reshape(-1, 3, 3)  # fmt: skip


# ---- antimatter15 .splat ---------------------------------------------------------------------------
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
    expect = np.clip(np.rint(255 * np.r_[0.5 + SH_C0 * np_(gs.sh0[0, 0]), torch.sigmoid(gs.opacities[0]).item()]), 0, 255)
    assert np.array_equal(rgba, expect)
    rot = np.frombuffer(rec[28:32], np.uint8)
    assert np.array_equal(rot, np.clip(np.rint(np_(unit(gs.quats)[0]) * 128 + 128), 0, 255))  # w first


# ---- SPZ ------------------------------------------------------------------------------------------------
SPZ_TOL = {  # from load-spz.cc's quantisation (12 fractional bits)
    "means": 0.5 / 4096 + 1e-6,  # 24-bit fixed point, round to nearest
    "scales": 1 / 32 + 1e-6,  # (s + 10)·16 rounded, for s in [−10, 5.9]
    "sh0": 0.5 / (0.15 * 255) + 1e-6,  # f_dc·0.15·255 + 127.5 rounded, for |f_dc| ≤ 3.3
    "alpha": 0.5 / 255 + 1e-6,  # sigmoid·255 rounded
    "shN": 0.5 / 128 + 1e-6,  # sh·128 + 128 rounded, for |sh| ≤ 127/128 (the range is [−1, 127/128])
    "quat_dot": 0.99999,  # smallest three, 9-bit magnitudes of |v| ≤ 1/√2: |Δv| ≤ 7e-4
}


def check_spz_values(gs: GaussianSet, back: GaussianSet) -> None:
    assert len(back) == len(gs) and back.sh_degree == gs.sh_degree
    assert max_err(back.means, gs.means) <= SPZ_TOL["means"]
    assert max_err(back.scales, gs.scales) <= SPZ_TOL["scales"]
    assert max_err(back.sh0, gs.sh0.clamp(-127.5 / 38.25, 127.5 / 38.25)) <= SPZ_TOL["sh0"]
    assert max_err(torch.sigmoid(back.opacities), torch.sigmoid(gs.opacities)) <= SPZ_TOL["alpha"]
    inside = gs.shN.abs() <= 127 / 128  # the stored range is [−1, 127/128], in either axis convention
    assert max_err(back.shN[inside], gs.shN[inside]) <= SPZ_TOL["shN"]
    assert (back.shN[~inside].abs() >= 127 / 128).all()  # out-of-range coefficients saturate
    assert min_quat_dot(back.quats, gs.quats) >= SPZ_TOL["quat_dot"]


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("degree", [0, 1, 3])
def test_spz_round_trip(tmp_path, version, degree):
    gs = random_set(400, degree=degree, seed=degree)
    path = save_spz(gs, tmp_path / "x.spz", version=version)
    raw = path.read_bytes()
    header = raw[:32] if version == 4 else gzip.decompress(raw)[:16]
    assert header[:4] == b"NGSP" and struct.unpack_from("<II", header, 4) == (version, 400) and header[12] == degree
    check_spz_values(gs, load_spz(path))


def test_spz_default_is_v4_and_gsply_reads_it(tmp_path):
    """gsply's reader on our SPZ: it returns the stored (RUB) values, so compare with the flipped input."""
    gs = random_set(600, degree=3, seed=7)
    path = save_scene(gs, tmp_path / "x.spz")
    assert path.read_bytes()[:8] == b"NGSP" + struct.pack("<I", 4)
    theirs = gsply.read_spz(path)
    m, q, s = flip_axes(np_(gs.means), np_(gs.quats), np_(gs.shN))
    m, q, s = (torch.from_numpy(a).float() for a in (m, q, s))
    stored = GaussianSet(m, q, gs.scales, gs.opacities, gs.sh0, s)
    as_gsply = GaussianSet(
        torch.from_numpy(theirs.means), torch.from_numpy(theirs.quats), torch.from_numpy(theirs.scales),
        torch.from_numpy(theirs.opacities), torch.from_numpy(theirs.sh0)[:, None], torch.from_numpy(theirs.shN),
    )  # fmt: skip
    check_spz_values(stored, as_gsply)
    ours = load_spz(path, convert_axes=False)  # same bytes, same decode
    for name in ("means", "scales", "quats", "sh0", "shN"):
        assert max_err(getattr(ours, name), getattr(as_gsply, name)) < 1e-6, name
    assert max_err(torch.sigmoid(ours.opacities), torch.sigmoid(as_gsply.opacities)) < 1e-5


def test_spz_reads_gsply_v3(tmp_path):
    rng = np.random.default_rng(3)
    n = 257
    data = gsply.GSData.from_arrays(
        rng.normal(size=(n, 3)).astype("f4"), rng.normal(-3, 1, (n, 3)).astype("f4"), rng.normal(size=(n, 4)).astype("f4"),
        rng.normal(size=n).astype("f4"), rng.normal(size=(n, 3)).astype("f4"), rng.normal(0, 0.3, (n, 8, 3)).astype("f4"),
        format="ply",
    )  # fmt: skip
    gsply.write_spz(tmp_path / "g.spz", data, version=3)
    theirs, ours = gsply.read_spz(tmp_path / "g.spz"), load_spz(tmp_path / "g.spz", convert_axes=False)
    assert ours.sh_degree == 2
    assert max_err(ours.means, theirs.means) < 1e-6 and max_err(ours.quats, theirs.quats) < 1e-6
    assert max_err(ours.shN, theirs.shN) < 1e-6 and max_err(ours.sh0[:, 0], theirs.sh0) < 1e-6


def legacy_spz(version: int, n: int, sections: list[bytes], degree: int = 0, fb: int = 12, flags: int = 0) -> bytes:
    return gzip.compress(struct.pack("<IIIBBBB", 0x5053474E, version, n, degree, fb, flags, 0) + b"".join(sections))


def test_spz_v2_and_v1_by_hand(tmp_path):
    """Hand-packed v2 (3-byte quaternions, w ≥ 0 implied) and v1 (float16 positions), per load-spz.cc."""
    means = np.array([[0.5, -1.25, 3.0], [-2048 + 1 / 4096, 0.0, 1 / 4096]])
    fixed = np.rint(means * 4096).astype(np.int64) & 0xFFFFFF
    pos = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, fixed >> 16], axis=-1).astype(np.uint8).tobytes()
    alpha = bytes([0, 200])
    color = bytes([127, 128, 255, 0, 50, 100])
    scale = bytes([160, 0, 255, 96, 97, 98])
    q = np.array([[0.0, 0.0, 0.0, 1.0], [0.5, -0.5, 0.5, 0.5]])  # xyzw
    rot = np.clip(np.rint(q[:, :3] * 127.5 + 127.5), 0, 255).astype(np.uint8).tobytes()
    (tmp_path / "v2.spz").write_bytes(legacy_spz(2, 2, [pos, alpha, color, scale, rot]))
    gs = load_spz(tmp_path / "v2.spz", convert_axes=False)
    assert np.allclose(np_(gs.means), means, atol=1e-9)
    assert np.allclose(np_(gs.scales), np.frombuffer(scale, np.uint8).reshape(2, 3) / 16 - 10)
    assert np.allclose(np_(gs.sh0[:, 0]), (np.frombuffer(color, np.uint8).reshape(2, 3) / 255 - 0.5) / 0.15, atol=1e-6)
    assert np.allclose(np_(torch.sigmoid(gs.opacities)), [1e-6, 200 / 255], atol=1e-6)
    assert min_quat_dot(gs.quats, torch.tensor(q[:, [3, 0, 1, 2]])) > 0.9999
    pos16 = means.astype(np.float16).tobytes()
    (tmp_path / "v1.spz").write_bytes(legacy_spz(1, 2, [pos16, alpha, color, scale, rot]))
    assert np.allclose(np_(load_spz(tmp_path / "v1.spz", convert_axes=False).means), means.astype(np.float16))


def test_spz_axis_conversion_is_a_rotation_about_x():
    """RDF ↔ RUB: covariances become FΣF and SH colours in direction d become those in Fd (F = diag(1,−1,−1))."""
    gs = random_set(50, degree=3, seed=5)
    m, q, s = flip_axes(np_(gs.means), np_(gs.quats), np_(gs.shN))
    f = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
    assert np.allclose(m, np_(gs.means) * [1, -1, -1])
    r, r2 = rotation_matrices(gs.quats), rotation_matrices(torch.from_numpy(q))
    assert torch.allclose(r2, f @ r @ f, atol=1e-9)
    dirs = torch.nn.functional.normalize(torch.randn(50, 3, dtype=torch.float64), dim=1)
    k = 16
    c1 = torch.cat([gs.sh0.double(), gs.shN.double()], 1)
    c2 = torch.cat([gs.sh0.double(), torch.from_numpy(s)], 1)
    col1 = (eval_sh_bases(3, dirs)[..., None] * c1[:, :k]).sum(1)
    col2 = (eval_sh_bases(3, dirs @ f)[..., None] * c2[:, :k]).sum(1)
    assert torch.allclose(col1, col2, atol=1e-9)
    assert np.allclose(flip_axes(m, q, s)[2], np_(gs.shN)) and len(SH_FLIP) == 15


def test_spz_large_scene_uses_fewer_fractional_bits(tmp_path):
    gs = random_set(100, seed=2, pos_scale=2000.0)
    back = load_spz(save_spz(gs, tmp_path / "big.spz"))
    extent = gs.means.abs().max().item()
    fb = 12
    while extent * 2**fb > 2**23 - 1:
        fb -= 1
    assert fb < 12 and max_err(back.means, gs.means) <= 0.5 / 2**fb + 1e-3
    huge = random_set(4, pos_scale=1e7)
    with pytest.raises(SplatpackError, match="24-bit"):
        save_spz(huge, tmp_path / "huge.spz")


# ---- PlayCanvas compressed PLY ----------------------------------------------------------------------
def gsply_data(gs: GaussianSet):
    return gsply.GSData.from_arrays(
        np_(gs.means).astype("f4"), np_(gs.scales).astype("f4"), np_(gs.quats).astype("f4"),
        np_(gs.opacities).astype("f4"), np_(gs.sh0[:, 0]).astype("f4"),
        np_(gs.shN).astype("f4") if gs.shN.shape[1] else None, format="ply",
    )  # fmt: skip


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
        lo, hi = np.stack([x[chunks == c].min(0) for c in range(3)]), np.stack([x[chunks == c].max(0) for c in range(3)])
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
    props = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
             "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z"]  # fmt: skip
    header = (
        "ply\nformat binary_little_endian 1.0\nelement chunk 1\n" + "".join(f"property float {p}\n" for p in props)
        + "element vertex 2\n"
        + "".join(f"property uint {p}\n" for p in ("packed_position", "packed_rotation", "packed_scale", "packed_color"))
        + "end_header\n"
    )  # fmt: skip
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


# ---- PlayCanvas SOG ------------------------------------------------------------------------------------
def sog_reference(gs: GaussianSet) -> GaussianSet:
    """``gs`` as the SOG writer stores it: in Morton order, each Gaussian in its canonical frame."""
    from splatpack.core.frames import canonical_gaussians

    return canonical_gaussians(gs).subset(torch.from_numpy(morton_order(np_(gs.means))))


def check_sog_values(gs: GaussianSet, back: GaussianSet, meta: dict) -> None:
    """Tolerances: means half a 16-bit step of the log-transformed range, times d|x|/dv = 1+|x|;
    rotations 8-bit smallest three (|⟨q,q'⟩| ≥ 0.9999); scales and SH DC exactly the codebook
    entry nearest to the input; alpha 0.5/255."""
    ref = sog_reference(gs)
    span = np.array(meta["means"]["maxs"]) - np.array(meta["means"]["mins"])
    bound = (1 + np.abs(np_(ref.means))) * (span / 65535 / 2 + 1e-6) + 1e-6
    assert (np.abs(np_(back.means) - np_(ref.means)) <= bound).all()
    assert min_quat_dot(back.quats, ref.quats) >= 0.9999
    for name, key in [("scales", "scales"), ("sh0", "sh0")]:
        book = np.array(meta[key]["codebook"], np.float32).astype(np.float64)
        x = np_(getattr(ref, name)).ravel()
        nearest = np.abs(x[:, None] - book[None, :]).min(1)
        assert np.allclose(np.abs(np_(getattr(back, name)).ravel() - x), nearest, atol=1e-6), name
    assert max_err(torch.sigmoid(back.opacities), torch.sigmoid(ref.opacities)) <= 0.5 / 255 + 1e-6


def test_sog_round_trip_degree0_and_gsply_reads_it(tmp_path):
    gs = random_set(700, seed=4, pos_scale=3.0)
    path = save_scene(gs, tmp_path / "x.sog")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("meta.json"))
        for name in names - {"meta.json"}:
            data = zf.read(name)
            assert data[12:16] == b"VP8L", f"{name} is not lossless WebP"
    assert names == {"meta.json", "means_l.webp", "means_u.webp", "quats.webp", "scales.webp", "sh0.webp"}
    assert meta["version"] == 2 and meta["count"] == 700 and len(meta["scales"]["codebook"]) == 256
    back = load_scene(path)
    assert len(back) == 700 and back.sh_degree == 0
    check_sog_values(gs, back, meta)
    theirs = gsply.sogread(path)  # gsply's independent SOG reader agrees on every attribute
    for name in ("means", "quats", "scales"):
        assert max_err(getattr(back, name), getattr(theirs, name)) < 1e-5, name
    assert max_err(back.sh0[:, 0], theirs.sh0) < 1e-5
    assert max_err(torch.sigmoid(back.opacities), torch.sigmoid(torch.from_numpy(theirs.opacities))) < 1e-5


def test_sog_sh_palette_exact_and_folder_layout(tmp_path):
    """SH from 12 distinct vectors over 40 distinct values: palette and codebook reproduce them exactly."""
    gs = random_set(300, degree=3, seed=9)
    rng = np.random.default_rng(0)
    grid = np.linspace(-0.8, 0.8, 40)
    protos = grid[rng.integers(0, 40, (12, 15, 3))]
    gs.shN = torch.from_numpy(protos[rng.integers(0, 12, 300)]).float()
    gs.opacities[:20] = -30.0  # alpha 0: libwebp must keep the colour labels under it
    out = save_sog(gs, tmp_path / "folder")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["shN"]["bands"] == 3 and meta["shN"]["count"] == 12
    back = load_scene(out)
    assert detect_format(out).name == "sog" and back.sh_degree == 3
    check_sog_values(gs, back, meta)
    ref = sog_reference(gs)
    assert max_err(back.shN, ref.shN) < 1e-6
    theirs = gsply.sogread(out / "meta.json")
    assert max_err(back.shN, theirs.shN) < 1e-6
    assert max_err(load_sog(out / "meta.json").means, back.means) == 0


def write_sog_v1(gs: GaussianSet, folder: Path) -> GaussianSet:
    """``gs`` as a legacy SOG v1 folder, written here from the layout of splat-transform's
    ``read-sog-v1.ts`` (8-bit lerp ranges, no codebooks; means and quats as v2); returns the
    Gaussians it must decode to (Morton order; means and rotations still quantised)."""
    from splatpack.formats.sog import _texture, _webp

    files = encode_sog(gs)  # means_l/means_u and quats are laid out identically in v1
    meta2 = json.loads(files["meta.json"])
    ref = sog_reference(gs)
    n, w, h = len(gs), *texture_size(len(gs))

    def q8(x, lo, hi):
        return np.rint((x - lo) / np.where(hi > lo, hi - lo, 1) * 255).clip(0, 255).astype(np.uint8)

    def lerp(b, lo, hi):
        return lo + (hi - lo) * (b / 255.0)

    sc = np_(ref.scales)
    s_lo, s_hi = sc.min(0), sc.max(0)
    c = np.concatenate([np_(ref.sh0).reshape(n, 3), np_(ref.opacities).reshape(n, 1)], 1)
    c_lo, c_hi = c.min(0), c.max(0)
    sb, cb = q8(sc, s_lo, s_hi), q8(c, c_lo, c_hi)
    folder.mkdir()
    out = {name: files[name] for name in ("means_l.webp", "means_u.webp", "quats.webp")}
    out["scales.webp"] = _webp(_texture([sb[:, i] for i in range(3)], w, h))
    out["sh0.webp"] = _webp(_texture([cb[:, i] for i in range(3)], w, h, alpha=cb[:, 3]))
    meta = {
        "means": {"shape": [n, 3], "dtype": "float32", "mins": meta2["means"]["mins"], "maxs": meta2["means"]["maxs"],
                  "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"shape": [n, 3], "dtype": "float32", "mins": s_lo.tolist(), "maxs": s_hi.tolist(), "files": ["scales.webp"]},
        "quats": {"shape": [n, 4], "dtype": "uint8", "encoding": "quaternion_packed", "files": ["quats.webp"]},
        "sh0": {"shape": [n, 1, 4], "dtype": "float32", "mins": c_lo.tolist(), "maxs": c_hi.tolist(), "files": ["sh0.webp"]},
    }  # fmt: skip
    sh = np_(ref.shN)
    exp_sh = np.zeros((n, 0, 3))
    if sh.shape[1]:
        d = sh.shape[1]  # one palette entry per Gaussian: entry p, coefficient j at pixel p·D + j
        lo, hi = float(sh.min()), float(sh.max())
        shb = q8(sh, lo, hi)
        rows = -(-n // 64)
        cent = np.zeros((rows * 64 * d, 4), np.uint8)
        cent[: n * d, :3] = shb.reshape(n * d, 3)
        cent[:, 3] = 255
        out["shN_centroids.webp"] = _webp(cent.reshape(rows, 64 * d, 4))
        lab = np.arange(n)
        out["shN_labels.webp"] = _webp(_texture([lab & 0xFF, lab >> 8], w, h))
        meta["shN"] = {"shape": [n, d * 3], "dtype": "float32", "mins": lo, "maxs": hi, "quantization": 8,
                       "files": ["shN_centroids.webp", "shN_labels.webp"]}  # fmt: skip
        exp_sh = lerp(shb.astype(np.float64), lo, hi)
    out["meta.json"] = json.dumps(meta).encode()
    for name, data in out.items():
        (folder / name).write_bytes(data)
    return GaussianSet.from_numpy(
        np_(ref.means), np_(ref.quats), lerp(sb.astype(np.float64), s_lo, s_hi), lerp(cb[:, 3].astype(np.float64), c_lo[3], c_hi[3]),
        lerp(cb[:, :3].astype(np.float64), c_lo[:3], c_hi[:3]), exp_sh,
    )  # fmt: skip


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_sog_v1_legacy_layout(tmp_path, degree):
    """SOG v1 (no ``version`` key: 8-bit lerp ranges; shN centroids 64·D wide) decodes to the
    quantised values; corrupt v1 metadata is a one-line error."""
    gs = random_set(500, degree=degree, seed=11 + degree, pos_scale=2.0)
    exp = write_sog_v1(gs, tmp_path / "v1")
    back = load_scene(tmp_path / "v1")
    assert len(back) == 500 and back.sh_degree == degree
    meta2 = json.loads(encode_sog(gs)["meta.json"])
    span = np.array(meta2["means"]["maxs"]) - np.array(meta2["means"]["mins"])
    bound = (1 + np.abs(np_(exp.means))) * (span / 65535 / 2 + 1e-6) + 1e-6
    assert (np.abs(np_(back.means) - np_(exp.means)) <= bound).all()
    assert min_quat_dot(back.quats, exp.quats) >= 0.9999
    for name in ("scales", "opacities", "sh0", "shN"):
        assert max_err(getattr(back, name), getattr(exp, name)) < 1e-5, name
    meta = json.loads((tmp_path / "v1" / "meta.json").read_text())
    for key, bad, pattern in [
        ("means", {**meta["means"], "shape": "500"}, "means.shape"),
        ("means", {**meta["means"], "shape": [10**12, 3]}, "means.shape"),
        ("scales", {**meta["scales"], "mins": [0, 0]}, "scales.mins"),
        ("sh0", {**meta["sh0"], "maxs": [0, 0, 0]}, "sh0.maxs"),
    ] + ([("shN", {**meta["shN"], "mins": "x"}, "shN.mins")] if degree else []):
        (tmp_path / "v1" / "meta.json").write_text(json.dumps({**meta, key: bad}))
        with pytest.raises(SplatpackError, match=pattern):
            load_scene(tmp_path / "v1")
    (tmp_path / "v1" / "meta.json").write_text(json.dumps({**meta, "version": 3}))
    with pytest.raises(SplatpackError, match="unsupported SOG version 3"):
        load_scene(tmp_path / "v1")


def test_sog_reads_sogpy_output(tmp_path):
    """sogpy (a Python port of splat-transform's writer; it truncates where we round) → our reader."""
    sogpy = pytest.importorskip("SogPython")
    gs = random_set(150, seed=12)
    save_ply(gs, tmp_path / "in.ply")
    with contextlib.redirect_stdout(io.StringIO()):
        sogpy.convert_ply_to_sog(str(tmp_path / "in.ply"), str(tmp_path / "p.sog"), iterations=3)
    back, theirs = load_scene(tmp_path / "p.sog"), gsply.sogread(tmp_path / "p.sog")
    assert len(back) == 150
    for name in ("means", "quats", "scales"):
        assert max_err(getattr(back, name), getattr(theirs, name)) < 1e-5, name
    assert max_err(back.sh0[:, 0], theirs.sh0) < 1e-5
    match = torch.cdist(back.means, gs.means).argmin(1)
    assert len(set(match.tolist())) == 150
    ref = gs.subset(match)
    assert max_err(back.means, ref.means) < 2e-3 and min_quat_dot(back.quats, ref.quats) > 0.9995
    assert max_err(torch.sigmoid(back.opacities), torch.sigmoid(ref.opacities)) <= 1 / 255 + 1e-6  # truncation


def test_kmeans_1d_is_exact_on_few_values_and_nearest_otherwise():
    x = np.random.default_rng(1).choice(np.linspace(-3, 2, 200), size=(500, 3))
    book, lab = kmeans_1d(x)
    assert len(book) == 256 and np.array_equal(book[lab], x.astype(np.float32))
    y = np.random.default_rng(2).normal(size=5000)
    book, lab = kmeans_1d(y)
    assert np.all(np.diff(book) >= 0)
    assert np.allclose(np.abs(book[lab] - y), np.abs(y[:, None] - book[None].astype(np.float64)).min(1))
    assert np.sqrt(np.mean((book[lab] - y) ** 2)) < 0.012  # 5000 samples, 256 codes


# ---- dispatch ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,name", [("ply", "a.ply"), ("splat", "a.splat"), ("spz", "a.spz"), ("sog", "a.sog")])
def test_save_and_load_splats_dispatch(tmp_path, fmt, name):
    gs = random_set(64, degree=1, seed=3)
    path = save_scene(gs, tmp_path / name)
    assert detect_format(path).name == fmt and len(load_scene(path)) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # atomic: no temporary left behind
    other = save_scene(gs, tmp_path / "other.bin", format=fmt)  # format given explicitly
    if fmt != "splat":  # .splat has no magic: only its extension identifies it
        assert detect_format(other).name == fmt and len(load_scene(other)) == 64


def test_dispatch_errors(tmp_path):
    with pytest.raises(SplatpackError, match="does not exist"):
        load_scene(tmp_path / "missing.spz")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SplatpackError, match="unrecognised"):
        load_scene(tmp_path / "x.txt")
    with pytest.raises(SplatpackError, match="cannot write"):
        save_scene(random_set(4), tmp_path / "x.obj")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SplatpackError, match="meta.json"):
        load_scene(tmp_path / "empty")
    for name in ("x.splat", "x.spz"):
        with pytest.raises(SplatpackError, match="empty"):
            save_scene(random_set(0), tmp_path / name)
    assert len(load_scene(save_scene(random_set(0), tmp_path / "e.sog"))) == 0
    bad = random_set(4)
    bad.means[0, 0] = float("nan")
    for name in ("x.splat", "x.spz", "x.sog"):
        with pytest.raises(SplatpackError, match="non-finite"):
            save_scene(bad, tmp_path / name)


# ---- real samples ------------------------------------------------------------------------------------
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


def test_real_biker_spz(shared_dir, tmp_path):
    path = shared_dir / "splats" / "biker.spz"
    if not path.is_file():
        pytest.skip(f"{path} is absent (real-data test)")
    assert path.read_bytes()[:8] == b"NGSP" + struct.pack("<I", 4)
    gs = load_spz(path, convert_axes=False)
    assert len(gs) == 152_746 and gs.sh_degree == 0
    theirs = gsply.read_spz(path)
    assert max_err(gs.means, theirs.means) == 0 and max_err(gs.scales, theirs.scales) == 0
    assert max_err(gs.quats, theirs.quats) < 1e-6 and max_err(gs.sh0[:, 0], theirs.sh0) < 1e-6
    rdf = load_scene(path)
    assert torch.equal(rdf.means, gs.means * torch.tensor([1.0, -1.0, -1.0]))
    check_spz_values(rdf, load_spz(save_spz(rdf, tmp_path / "b.spz")))  # our writer re-quantises losslessly


# ---- bad input: property-based ---------------------------------------------------------------------
FORMATS = ["splat", "spz3", "spz4", "cply", "sog"]


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, tuple[bytes, str]]:
    """Small valid files of each format: name → (bytes, file suffix)."""
    d = tmp_path_factory.mktemp("valid")
    gs = random_set(40, degree=1, seed=21)
    out = {
        "splat": (save_splat(gs, d / "a.splat").read_bytes(), ".splat"),
        "spz3": (save_spz(gs, d / "a3.spz", version=3).read_bytes(), ".spz"),
        "spz4": (save_spz(gs, d / "a4.spz", version=4).read_bytes(), ".spz"),
        "sog": (save_sog(gs, d / "a.sog").read_bytes(), ".sog"),
    }
    big = random_set(300, degree=1, seed=22)
    gsply.plywrite(d / "c.compressed.ply", gsply_data(big), compressed=True)
    out["cply"] = ((d / "c.compressed.ply").read_bytes(), ".compressed.ply")
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def read_or_refuse(data: bytes, suffix: str, scratch: Path) -> GaussianSet | None:
    """Load ``data``; None when refused with SplatpackError. Any other exception fails the test."""
    path = scratch / f"f{suffix}"
    path.write_bytes(data)
    try:
        gs = load_scene(path)
    except SplatpackError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return None
    assert torch.isfinite(gs.means).all() and torch.isfinite(gs.scales).all() and torch.isfinite(gs.quats).all()
    return gs


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data())
def test_truncated_files_are_refused(samples, scratch, fmt, data):
    blob, suffix = samples[fmt]
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    gs = read_or_refuse(blob[:cut], suffix, scratch)
    if fmt == "splat":  # no header: a cut at a record boundary is a smaller valid file
        assert (gs is None) == (cut % 32 != 0 or cut == 0)
        assert gs is None or len(gs) == cut // 32
    else:
        assert gs is None


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data())
def test_byte_flips_never_crash(samples, scratch, fmt, data):
    blob, suffix = samples[fmt]
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(1, 255)), min_size=1, max_size=8))
    mutated = bytearray(blob)
    for offset, xor in flips:
        mutated[offset] ^= xor
    read_or_refuse(bytes(mutated), suffix, scratch)


def flip_inside(fmt: str, blob: bytes, flips: list[tuple[int, int]]) -> bytes:
    """Byte flips *inside* the compressed streams / zip members, re-packed with valid checksums."""

    def apply(buf: bytes) -> bytes:
        out = bytearray(buf)
        for offset, xor in flips:
            out[offset % len(out)] ^= xor
        return bytes(out)

    if fmt == "spz3":
        return gzip.compress(apply(gzip.decompress(blob)))
    if fmt == "spz4":
        import zstandard

        num = blob[15]
        toc = [struct.unpack_from("<QQ", blob, 32 + 16 * i) for i in range(num)]
        at, parts = 32 + 16 * num, []
        for csize, _ in toc:
            parts.append(zstandard.ZstdDecompressor().decompress(blob[at : at + csize]))
            at += csize
        flat = apply(blob[:32] + b"".join(parts))
        head, body, streams = flat[:32], flat[32:], []
        for _, usize in toc:
            streams.append(zstandard.ZstdCompressor().compress(body[:usize]))
            body = body[usize:]
        table = b"".join(struct.pack("<QQ", len(s), u) for s, (_, u) in zip(streams, toc))
        return head + table + b"".join(streams)
    if fmt == "sog":
        src = zipfile.ZipFile(io.BytesIO(blob))
        names = src.namelist()
        victim = names[flips[0][0] % len(names)]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for name in names:
                zf.writestr(name, apply(src.read(name)) if name == victim else src.read(name))
        return out.getvalue()
    raise ValueError(fmt)


@pytest.mark.parametrize("fmt", ["spz3", "spz4", "sog"])
@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 2**20), st.integers(1, 255)), min_size=1, max_size=6))
def test_byte_flips_inside_streams_never_crash(samples, scratch, fmt, flips):
    blob, suffix = samples[fmt]
    read_or_refuse(flip_inside(fmt, blob, flips), suffix, scratch)


def forge_count(fmt: str, blob: bytes, count: int) -> bytes:
    """``blob`` with its Gaussian count replaced by ``count`` (re-compressed where the count is inside a stream)."""
    if fmt == "spz3":
        raw = bytearray(gzip.decompress(blob))
        struct.pack_into("<I", raw, 8, count)
        return gzip.compress(bytes(raw))
    if fmt == "spz4":
        raw = bytearray(blob)
        struct.pack_into("<I", raw, 8, count)
        return bytes(raw)
    if fmt == "cply":
        head_end = blob.index(b"end_header\n")
        head = blob[:head_end].decode()
        n = int(head.split("element vertex ")[1].split()[0])
        head = head.replace(f"element vertex {n}\n", f"element vertex {count}\n")
        head = head.replace(f"element sh {n}\n", f"element sh {count}\n")
        head = head.replace(f"element chunk {math.ceil(n / 256)}\n", f"element chunk {math.ceil(count / 256)}\n")
        return head.encode() + blob[head_end:]
    if fmt == "sog":
        src = zipfile.ZipFile(io.BytesIO(blob))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for name in src.namelist():
                data = src.read(name)
                if name == "meta.json":
                    meta = json.loads(data)
                    meta["count"] = count
                    data = json.dumps(meta).encode()
                zf.writestr(name, data)
        return out.getvalue()
    raise ValueError(fmt)


@pytest.mark.parametrize("fmt", ["spz3", "spz4", "cply", "sog"])
@settings(FUZZ, max_examples=30)
@given(count=st.one_of(st.integers(0, 1000), st.integers(0, 2**32 - 1)))
def test_forged_counts_are_refused(samples, scratch, fmt, count):
    blob, suffix = samples[fmt]
    gs = read_or_refuse(forge_count(fmt, blob, count), suffix, scratch)
    true_n = 300 if fmt == "cply" else 40
    # fewer Gaussians than stored can be a consistent file for SOG (images are padded) or a
    # compressed PLY whose chunks still match; never more than the file holds
    assert gs is None or len(gs) == count <= true_n


# ---- bad input: forged 10⁹ count, bombs, forged images ---------------------------------------------------
@pytest.mark.parametrize("fmt", ["spz3", "spz4", "spz4-toc", "cply", "sog", "ply"])
def test_billion_gaussian_header_is_refused_quickly(samples, tmp_path, fmt):
    n = 10**9
    if fmt == "ply":
        data = save_ply(random_set(40), tmp_path / "i.ply").read_bytes()
        data = data.replace(b"element vertex 40", b"element vertex 1000000000")
        suffix = ".ply"
    elif fmt == "spz4-toc":  # a consistent table of contents too: only the size bound can refuse it
        blob, suffix = samples["spz4"]
        raw = bytearray(forge_count("spz4", blob, n))
        for i, per in enumerate([9, 1, 3, 3, 4, 9]):
            struct.pack_into("<Q", raw, 32 + 16 * i + 8, per * n)
        data = bytes(raw)
    else:
        blob, suffix = samples[fmt]
        data = forge_count(fmt, blob, n)
    path = tmp_path / f"forged{suffix}"
    path.write_bytes(data)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(SplatpackError) as err:
        load_scene(path)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 32 << 20, (elapsed, peak)
    assert "\n" not in str(err.value)


def test_gzip_bomb_after_the_payload_is_refused_with_bounded_memory(tmp_path, samples):
    gs_bytes = gzip.decompress(samples["spz3"][0])
    bomb = gzip.compress(gs_bytes + bytes(32 << 20), compresslevel=1)  # 32 MiB of zeros after the sections
    (tmp_path / "bomb.spz").write_bytes(bomb)
    tracemalloc.start()
    with pytest.raises(SplatpackError, match="after its payload"):
        load_spz(tmp_path / "bomb.spz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_zstd_bomb_stream_is_refused_with_bounded_memory(tmp_path, samples):
    import zstandard

    raw = bytearray(samples["spz4"][0])
    toc = [struct.unpack_from("<QQ", raw, 32 + 16 * i) for i in range(raw[15])]
    first = zstandard.ZstdCompressor().compress(bytes(64 << 20))  # the positions stream inflates to 64 MiB
    struct.pack_into("<Q", raw, 32, len(first))
    body_start = 32 + 16 * len(toc)
    data = bytes(raw[:body_start]) + first + bytes(raw[body_start + toc[0][0] :])
    (tmp_path / "zbomb.spz").write_bytes(data)
    tracemalloc.start()
    with pytest.raises(SplatpackError, match="more than"):
        load_spz(tmp_path / "zbomb.spz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_sog_forged_image_header_and_bad_names(tmp_path):
    out = save_sog(random_set(30), tmp_path / "s")
    webp = bytearray((out / "means_l.webp").read_bytes())
    assert webp[12:16] == b"VP8L"
    bits = (16383) | (16383 << 14)  # claims 16384 × 16384 pixels in a few bytes
    webp[21:25] = (bits | (int.from_bytes(webp[21:25], "little") & ~((1 << 28) - 1))).to_bytes(4, "little")
    (out / "means_l.webp").write_bytes(bytes(webp))
    with pytest.raises(SplatpackError, match="does not fit the count"):
        load_sog(out)
    save_sog(random_set(30), out)
    meta = json.loads((out / "meta.json").read_text())
    meta["sh0"]["files"] = ["../secret.webp"]
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SplatpackError, match="invalid file"):
        load_sog(out)
    meta["sh0"]["files"] = ["sh0.webp"]
    meta["means"]["mins"] = [float("nan"), 0, 0]
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SplatpackError, match="non-finite"):
        load_sog(out)
    meta["means"]["mins"] = [0, 0, 0]
    meta["version"] = 1
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SplatpackError, match="version"):
        load_sog(out)


def test_texture_size_matches_splat_transform():
    assert texture_size(1) == (4, 4)
    for n in (5, 1000, 152_746):
        w, h = texture_size(n)
        assert w == math.ceil(math.sqrt(n) / 4) * 4 and h == math.ceil(n / w / 4) * 4 and w * h >= n
    assert list(encode_sog(random_set(5)).keys())[-1] == "meta.json"
