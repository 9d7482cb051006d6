"""PlayCanvas SOG (:mod:`splatpack.formats.sog`): round trips (zip and folder) within SOG's
quantisation and against gsply's reader, the legacy v1 layout, files written by sogpy, the
1-D k-means codebooks, the texture size of splat-transform, and forged images and metadata."""

from __future__ import annotations

import contextlib
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from format_scenes import max_err, min_quat_dot, np_, random_set

from splatpack.compress.kmeans import kmeans_1d
from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.frames import canonical_gaussians
from splatpack.formats import detect_format, load_scene, save_scene
from splatpack.formats.ply import save_ply
from splatpack.formats.sog import encode_sog, load_sog, morton_order, save_sog, texture_size
from splatpack.formats.sog.textures import SogFiles, encode_webp, pack_texture, read_webp, webp_size

gsply = pytest.importorskip("gsply")


def sog_reference(gs: GaussianSet) -> GaussianSet:
    """``gs`` as the SOG writer stores it: in Morton order, each Gaussian in its canonical frame."""
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
    out["scales.webp"] = encode_webp(pack_texture([sb[:, i] for i in range(3)], w, h))
    out["sh0.webp"] = encode_webp(pack_texture([cb[:, i] for i in range(3)], w, h, alpha=cb[:, 3]))
    meta = {
        "means": {
            "shape": [n, 3],
            "dtype": "float32",
            "mins": meta2["means"]["mins"],
            "maxs": meta2["means"]["maxs"],
            "files": ["means_l.webp", "means_u.webp"],
        },
        "scales": {
            "shape": [n, 3],
            "dtype": "float32",
            "mins": s_lo.tolist(),
            "maxs": s_hi.tolist(),
            "files": ["scales.webp"],
        },
        "quats": {"shape": [n, 4], "dtype": "uint8", "encoding": "quaternion_packed", "files": ["quats.webp"]},
        "sh0": {
            "shape": [n, 1, 4],
            "dtype": "float32",
            "mins": c_lo.tolist(),
            "maxs": c_hi.tolist(),
            "files": ["sh0.webp"],
        },
    }
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
        out["shN_centroids.webp"] = encode_webp(cent.reshape(rows, 64 * d, 4))
        lab = np.arange(n)
        out["shN_labels.webp"] = encode_webp(pack_texture([lab & 0xFF, lab >> 8], w, h))
        meta["shN"] = {
            "shape": [n, d * 3],
            "dtype": "float32",
            "mins": lo,
            "maxs": hi,
            "quantization": 8,
            "files": ["shN_centroids.webp", "shN_labels.webp"],
        }
        exp_sh = lerp(shb.astype(np.float64), lo, hi)
    out["meta.json"] = json.dumps(meta).encode()
    for name, data in out.items():
        (folder / name).write_bytes(data)
    return GaussianSet.from_numpy(
        np_(ref.means),
        np_(ref.quats),
        lerp(sb.astype(np.float64), s_lo, s_hi),
        lerp(cb[:, 3].astype(np.float64), c_lo[3], c_hi[3]),
        lerp(cb[:, :3].astype(np.float64), c_lo[:3], c_hi[:3]),
        exp_sh,
    )


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


def test_sog_textures_round_trip_through_bounded_reader(tmp_path):
    """The texture seam (:mod:`splatpack.formats.sog.textures`): a packed texture written as lossless
    WebP reads back pixel for pixel through ``SogFiles``/``read_webp``, which refuse oversized files
    and images whose header does not fit the count."""
    col = np.arange(21, dtype=np.uint8)
    img = pack_texture([col, 255 - col], 8, 4, alpha=7)
    assert img.shape == (4, 8, 4) and not img.reshape(-1, 4)[21:].any() and (img.reshape(-1, 4)[:21, 3] == 7).all()
    data = encode_webp(img)
    assert webp_size(data) == (8, 4) and webp_size(b"not a webp image at all, really") is None
    (tmp_path / "t.webp").write_bytes(data)
    files = SogFiles(tmp_path)
    assert np.array_equal(read_webp(files, "t.webp", 21, 64), img.reshape(-1, 4))
    with pytest.raises(SplatpackError, match="does not fit the count"):
        read_webp(files, "t.webp", 33, 64)
    with pytest.raises(SplatpackError, match="larger than the count allows"):
        files.read("t.webp", len(data) - 1)


def test_sog_package_reexports_its_modules():
    import splatpack.formats.sog as sog
    from splatpack.formats.sog import read, textures, write

    assert sog.encode_sog is write.encode_sog and sog.save_sog is write.save_sog
    assert sog.load_sog is read.load_sog and sog.FORMAT.read is read.load_sog and sog.FORMAT.write is write.save_sog
    assert sog.morton_order is textures.morton_order and sog.texture_size is textures.texture_size


def _patch_central_directory(data: bytes, offset: int, value: bytes) -> bytes:
    """``data`` with ``value`` written at ``offset`` of every central-directory entry."""
    b = bytearray(data)
    i = b.find(b"PK\x01\x02")
    while i >= 0:
        b[i + offset : i + offset + len(value)] = value
        i = b.find(b"PK\x01\x02", i + 4)
    return bytes(b)


@pytest.mark.parametrize(
    ("offset", "value", "what"),
    [(6, bytes([83, 0]), "a zip version zipfile does not implement"), (8, b"\x01\x00", "an encrypted member")],
)
def test_a_zip_python_cannot_open_is_refused(tmp_path, offset, value, what):
    """Found by benchmarks/fuzz_readers.py: NotImplementedError / RuntimeError tracebacks from zipfile."""
    path = save_sog(random_set(30, seed=3), tmp_path / "a.sog")
    path.write_bytes(_patch_central_directory(path.read_bytes(), offset, value))
    with pytest.raises(SplatpackError):
        load_scene(path)


def test_beside_a_json_the_file_set_switches_at_once(tmp_path, monkeypatch):
    """SOG written next to ``scene.json``: content-named images first, the .json last. A write
    killed before the .json leaves the old scene readable (it used to mix new images with the old
    meta); a finished one removes the old images."""
    import splatpack.formats.sog.write as sog_write

    first, second = random_set(40, seed=4), random_set(70, seed=5)
    path = tmp_path / "scene.json"
    save_sog(first, path)
    before = sorted(p.name for p in tmp_path.iterdir())

    real = sog_write.atomic_write_bytes

    def killed_at_the_json(p, data):
        if Path(p).suffix == ".json":
            raise KeyboardInterrupt  # as if the process died here
        real(p, data)

    monkeypatch.setattr(sog_write, "atomic_write_bytes", killed_at_the_json)
    with pytest.raises(KeyboardInterrupt):
        save_sog(second, path)
    assert len(load_scene(path)) == 40  # still the first scene, whole
    monkeypatch.setattr(sog_write, "atomic_write_bytes", real)
    save_sog(second, path)
    assert len(load_scene(path)) == 70
    after = sorted(p.name for p in tmp_path.iterdir() if p.name not in before or p.name == "scene.json")
    leftovers = [n for n in before if n != "scene.json" and (tmp_path / n).exists()]
    assert leftovers == [] and len(after) == 6  # the .json and its five images (SH degree 0)
