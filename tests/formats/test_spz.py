"""Niantic SPZ (:mod:`splatpack.formats.spz`): round trips of v3 and v4 within SPZ's quantisation,
our files against gsply's reader and gsply's v3 files against ours, hand-packed v1/v2, the
RDF ↔ RUB axis conversion, the fixed-point range, the real sample ``../shared/splats/biker.spz``,
and gzip / zstd compression bombs refused with bounded memory."""

from __future__ import annotations

import gzip
import struct
import tracemalloc

import numpy as np
import pytest
import torch
import zstandard
from format_scenes import max_err, min_quat_dot, np_, random_set, unit

from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.sh import eval_sh_bases
from splatpack.formats import load_scene, save_scene
from splatpack.formats.spz import SH_FLIP, flip_axes, load_spz, save_spz

gsply = pytest.importorskip("gsply")

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


def rotation_matrices(q: torch.Tensor) -> torch.Tensor:
    w, x, y, z = unit(q.double()).unbind(1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=1,
    ).reshape(-1, 3, 3)


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
        torch.from_numpy(theirs.means),
        torch.from_numpy(theirs.quats),
        torch.from_numpy(theirs.scales),
        torch.from_numpy(theirs.opacities),
        torch.from_numpy(theirs.sh0)[:, None],
        torch.from_numpy(theirs.shN),
    )
    check_spz_values(stored, as_gsply)
    ours = load_spz(path, convert_axes=False)  # same bytes, same decode
    for name in ("means", "scales", "quats", "sh0", "shN"):
        assert max_err(getattr(ours, name), getattr(as_gsply, name)) < 1e-6, name
    assert max_err(torch.sigmoid(ours.opacities), torch.sigmoid(as_gsply.opacities)) < 1e-5


def test_spz_reads_gsply_v3(tmp_path):
    rng = np.random.default_rng(3)
    n = 257
    data = gsply.GSData.from_arrays(
        rng.normal(size=(n, 3)).astype("f4"),
        rng.normal(-3, 1, (n, 3)).astype("f4"),
        rng.normal(size=(n, 4)).astype("f4"),
        rng.normal(size=n).astype("f4"),
        rng.normal(size=(n, 3)).astype("f4"),
        rng.normal(0, 0.3, (n, 8, 3)).astype("f4"),
        format="ply",
    )
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


def peak_memory_of_refusal(path, match: str) -> int:
    """Peak bytes traced while :func:`load_spz` refuses ``path`` with an error matching ``match``."""
    tracemalloc.start()
    try:
        with pytest.raises(SplatpackError, match=match):
            load_spz(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gzip_bomb_after_the_payload_is_refused_with_bounded_memory(tmp_path, samples):
    gs_bytes = gzip.decompress(samples["spz3"][0])
    bomb = gzip.compress(gs_bytes + bytes(32 << 20), compresslevel=1)  # 32 MiB of zeros after the sections
    (tmp_path / "bomb.spz").write_bytes(bomb)
    peak = peak_memory_of_refusal(tmp_path / "bomb.spz", "after its payload")
    assert peak < 8 << 20, peak


def test_zstd_bomb_stream_is_refused_with_bounded_memory(tmp_path, samples):
    raw = bytearray(samples["spz4"][0])
    toc = [struct.unpack_from("<QQ", raw, 32 + 16 * i) for i in range(raw[15])]
    first = zstandard.ZstdCompressor().compress(bytes(64 << 20))  # the positions stream inflates to 64 MiB
    struct.pack_into("<Q", raw, 32, len(first))
    body_start = 32 + 16 * len(toc)
    data = bytes(raw[:body_start]) + first + bytes(raw[body_start + toc[0][0] :])
    (tmp_path / "zbomb.spz").write_bytes(data)
    peak = peak_memory_of_refusal(tmp_path / "zbomb.spz", "more than")
    assert peak < 8 << 20, peak
