"""The browser decoder of ``.spk`` files (``viewer/src/spk``, run in Node) against the Python one.

Scenes are written with the Python writers — compact scenes (a hash-grid colour field with dense
and hashed levels; per-Gaussian SH) and grid scenes (lossless JPEG XL, PNG, WebP with split bytes,
ANS; lossy JPEG XL; a 16-bit quality; the SH palette; α opacities; SH degrees 0, 1, 3; a subset of
``shared/splats/plant.splat``) — then ``viewer/test/decode_vectors.mjs`` decodes them and writes
every array. Checked:

* every section equals ``SpkReader.read_array`` exactly (lossy JPEG XL: within one level, since
  the browser's JPEG XL decoder is jxl-oxide, not libjxl);
* the assembled scene equals ``load_scene`` (means, linear scales, unit quaternions, α, SH)
  within float32 rounding;
* a compact scene's field colours equal ``field_colors`` (then max(0, ½ + C₀·f)) within 1e-4;
* corrupt files (truncated, a flipped byte in the table or a payload, forged counts and shapes
  with valid checksums) give one-line ``SpkError``s in JavaScript — never a hang or a crash.

Skips when ``node`` or ``viewer/node_modules`` is missing (``cd viewer && npm ci``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from splatpack.codecs.compact import (
    CompactCodecConfig,
    camera_center,
    dequantize,
    field_colors,
    quantize_compact,
    read_compact,
    write_compact,
)
from splatpack.codecs.grid import AttributeCoding, GridCodecConfig, write_grid_scene
from splatpack.codecs.grid.config import resolved_low_bits
from splatpack.compress.grid_sort import grid_shape
from splatpack.compress.sh_basis import zeroed_sh_rest
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.core.sh import SH_C0
from splatpack.formats import load_scene
from splatpack.spk.container import HEADER_SIZE, SpkReader

ROOT = Path(__file__).resolve().parents[2]
VIEWER = ROOT / "viewer"
NODE = shutil.which("node")
NODE_MODULES = VIEWER / "node_modules"
DTYPES = {
    "u8": "<u1",
    "i8": "<i1",
    "u16": "<u2",
    "i16": "<i2",
    "u32": "<u4",
    "i32": "<i4",
    "u64": "<u8",
    "i64": "<i8",
    "f16": "<u2",
    "f32": "<f4",
    "f64": "<f8",
}
CAMERAS = [(0.3, -0.2, 4.0), (-3.0, 2.0, -1.5)]

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (the browser decoder is tested in Node)"),
    pytest.mark.skipif(
        not (NODE_MODULES / "jxl-oxide-wasm").is_dir(),
        reason="viewer/node_modules is missing (run: cd viewer && npm ci)",
    ),
]


# --------------------------------------------------------------------------- running the JS decoder


def run_js(path: Path, out: Path, cameras=()) -> dict:
    cmd = [NODE, str(VIEWER / "test" / "decode_vectors.mjs"), str(path), str(out)]
    for c in cameras:
        cmd += ["--camera", ",".join(repr(float(v)) for v in c)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads((out / "index.json").read_text())


def load(out: Path, entry: dict) -> np.ndarray:
    return np.fromfile(out / entry["file"], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])


def dtype_name(a: np.ndarray) -> str:
    """The JS decoder's name of a numpy array's dtype (f16 arrays come as their bit patterns)."""
    if a.dtype == np.float16:
        return "f16"
    return next(k for k, v in DTYPES.items() if k != "f16" and np.dtype(v) == a.dtype)


def lossy_sections(meta: dict) -> set[str]:
    attrs = meta.get("attributes", {})
    return {f"grid.{name}" for name, e in attrs.items() if e.get("distance", 0) > 0}


def check_sections(path: Path, out: Path, index: dict) -> None:
    with SpkReader(path) as r:
        names = [s.name for s in r.sections]
        assert sorted(index["sections"]) == sorted(names)
        lossy = lossy_sections(r.meta)
        for name in names:
            want = r.read_array(name)
            e = index["sections"][name]
            assert e["dtype"] == dtype_name(want), name
            got = load(out, e)
            assert got.shape == want.shape, name
            if want.dtype == np.float16:
                want = want.view("<u2")
            if name in lossy:  # jxl-oxide vs libjxl: the same image within one level
                diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
                assert diff.max() <= 1, (name, diff.max(), diff.mean())
            else:
                assert np.array_equal(got, want), name


def check_geometry(out: Path, index: dict, gs: GaussianSet, atol: dict | None = None) -> None:
    """The JS scene against Python's Gaussians: means, linear scales, unit quats, α, SH."""
    arrays = index["scene"]["arrays"]
    atol = atol or {}
    n = len(gs)
    assert index["scene"]["numGaussians"] == n

    def close(name, got, want, rtol=2e-6, eps=1e-6):
        want = want.detach().double().numpy().reshape(got.shape)
        tol = eps * max(1.0, float(np.abs(want).max(initial=0))) + atol.get(name, 0.0)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=tol, err_msg=name)

    close("means", load(out, arrays["means"]), gs.means)
    close("scales", load(out, arrays["scales"]), torch.exp(gs.scales), rtol=1e-5 + atol.get("scales", 0))
    close("quats", load(out, arrays["quats"]), torch.nn.functional.normalize(gs.quats, dim=-1))
    close("opacities", load(out, arrays["opacities"]), torch.sigmoid(gs.opacities))
    if "sh0" in arrays:
        close("sh0", load(out, arrays["sh0"]), gs.sh0)
        if gs.shN.shape[1]:
            close("shN", load(out, arrays["shRest"]), gs.shN)
        else:
            assert "shRest" not in arrays
    assert index["scene"]["shDegree"] == gs.sh_degree or "sh0" not in arrays


# --------------------------------------------------------------------------- scenes


def smooth_scene(n: int, degree: int, seed: int = 0) -> GaussianSet:
    """Gaussians on a sphere with attributes that vary smoothly with position."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    p = v / np.linalg.norm(v, axis=1, keepdims=True)
    k = (degree + 1) ** 2 - 1
    freq = np.arange(1, k + 1)[None, :, None]
    angle = np.linalg.norm(0.8 * p, axis=1, keepdims=True)
    quats = np.concatenate([np.cos(angle / 2), np.sin(angle / 2) * p], axis=1)
    quats[::3] *= -1.7
    return GaussianSet.from_numpy(
        means=1.5 * p + np.array([0.3, -0.2, 0.1]) + 0.05 * rng.normal(size=(n, 3)),
        quats=quats,
        scales=-4.0 + 0.6 * p + 0.2 * p[:, ::-1],
        opacities=3.0 * p[:, 2] + 1.0,
        sh0=0.9 * np.sin(2.0 * p),
        shN=(0.15 * np.cos(freq * p[:, None, :]) / freq).reshape(n, k, 3),
    )


def scattered_grid(n: int, seed: int = 0) -> np.ndarray:
    """A grid index with the Gaussians in random cells (empty cells anywhere), skipping PLAS."""
    h, w = grid_shape(n)
    cells = np.random.default_rng(seed).permutation(h * w)
    gi = np.full(h * w, -1)
    gi[cells[:n]] = np.arange(n)
    return gi.reshape(h, w)


#: attribute → (bits, low bits) of the "low-bits-png" case: every attribute split, quaternions as components
LOW_BITS = {"means": (14, 6), "sh0": (8, 3), "shN": (5, 1), "scales": (6, 2), "quats": (6, 5), "opacities": (6, 5)}


def lossless(codec: str, **kw) -> GridCodecConfig:
    bits = {"means": 14, "sh0": 8, "shN": 5, "scales": 6, "quats": 6, "opacities": 6}
    return GridCodecConfig(**{a: AttributeCoding(b, codec) for a, b in bits.items()}, **kw)


def compact_code(n: int, sh: bool = False, seed: int = 0):
    """A compact scene from synthetic streams: a colour field (dense and hashed levels) or SH."""
    from splatpack.compress.colour_field import ColourField, ColourFieldConfig
    from splatpack.compress.hash_grid import HashGridConfig

    g = torch.Generator().manual_seed(seed)
    field = sh_coeffs = None
    if sh:
        sh_coeffs = 0.4 * torch.randn(n, 9, 3, generator=g)
    else:
        grid = HashGridConfig(n_levels=6, n_features_per_level=2, log2_hashmap_size=10, base_resolution=4)
        field = ColourField(ColourFieldConfig(grid=grid, hidden=32), [-2.0, -1.5, -2.0], [2.0, 1.5, 2.5])
        with torch.no_grad():
            field.hash_params.copy_(torch.randn(field.hash_params.shape, generator=g) * 0.3)
            for lin in field.linears():
                lin.weight.mul_(3.0)
    books_s, books_r = torch.randn(3, 16, 3, generator=g) * 0.3 - 3.0, torch.randn(3, 16, 4, generator=g) * 0.3
    means = torch.randn(n, 3, generator=g) * torch.tensor([1.5, 1.0, 2.0])
    return quantize_compact(
        means,
        torch.rand(n, generator=g),
        torch.randint(0, 16, (n, 3), generator=g),
        torch.randint(0, 16, (n, 3), generator=g),
        books_s,
        books_r,
        CompactCodecConfig(),
        field=field,
        sh=sh_coeffs,
        meta={"scale_space": "log"},
    )


def compact_geometry(scene) -> GaussianSet:
    """A decoded compact scene's Gaussians as ``load_scene`` gives them, without baking the
    colour field into SH (``compact_to_gaussians`` minus ``bake_sh``)."""
    alpha = scene.opacities.clamp(1e-6, 1 - 1e-6)
    n = len(scene)
    return GaussianSet(
        means=scene.means,
        quats=torch.nn.functional.normalize(scene.quats, dim=-1),
        scales=torch.log(scene.scales.abs().clamp_min(1e-12)),
        opacities=torch.log(alpha / (1 - alpha)),
        sh0=torch.zeros(n, 1, 3),
        shN=torch.zeros(n, 0, 3),
    )


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("viewer_decode")


GRID_CASES = {
    "jxl": (3, lambda: lossless("jxl")),
    "png": (3, lambda: lossless("png")),
    "webp": (3, lambda: lossless("webp", opacity_space="alpha")),  # 14-bit means: split bytes
    "ans": (3, lambda: lossless("ans")),
    "jxl-lossy": (3, lambda: GridCodecConfig(sh0=AttributeCoding(8, "jxl", 1.0), shN=AttributeCoding(5, "jxl", 1.5))),
    "q10": (3, lambda: GridCodecConfig.from_quality(10)),  # 16-bit means, sh0
    "q10-png": (2, lambda: GridCodecConfig.from_quality(10, image_codec="png")),  # 16-bit PNGs
    "palette": (3, lambda: GridCodecConfig.from_quality(2, sh_mode="palette", palette_size=4096, palette_iterations=3)),
    "palette-png": (
        1,
        lambda: GridCodecConfig.from_quality(
            0, sh_mode="palette", palette_size=1024, shN=AttributeCoding(5, "png"), palette_iterations=2
        ),
    ),
    "rvq": (3, lambda: GridCodecConfig.from_quality(3, sh_mode="rvq", rvq_size=16, palette_iterations=3)),
    "rvq-png": (1, lambda: GridCodecConfig.from_quality(0, sh_mode="rvq", rvq_stages=3, rvq_size=5, image_codec="png")),
    "degree0-webp": (0, lambda: GridCodecConfig.from_quality(7, means=AttributeCoding(15, "webp"))),
    "basis": (3, lambda: GridCodecConfig.from_quality(6, sh_mode="basis", basis_rank=7)),
    "basis-png": (1, lambda: GridCodecConfig.from_quality(6, sh_mode="basis", basis_rank=12, image_codec="png")),
    # the SH rest of 30 % zeroed: a mask, the others' coefficients packed (zeroed_sh_rest)
    "basis-zero": (3, lambda: GridCodecConfig.from_quality(6, sh_mode="basis", basis_rank=7)),
    # low bits beside the image, and per-Gaussian dropped bits: one class for every attribute
    # (grid.drop), and any depths per attribute (grid.means.drop, grid.quats.drop, …)
    "dropped-bits": (1, lambda: GridCodecConfig.from_quality(6, drop_fraction=0.5)),
    "dropped-bits-planes": (1, lambda: GridCodecConfig.from_quality(6, frames="turned")),
    "low-bits-png": (
        2,
        lambda: GridCodecConfig(
            **{a: AttributeCoding(b, "png", low_bits=r) for a, (b, r) in LOW_BITS.items()}, opacity_space="alpha"
        ),
    ),
    # positions as sorted Hilbert keys (the grid in their order): 30-bit keys with dropped low
    # bits, and 48-bit keys (16 bits a channel, none beside them) beyond JavaScript's 32-bit operators
    "curve-keys": (1, lambda: GridCodecConfig.from_quality(6, drop_fraction=0.5)),
    "curve-keys-48": (0, lambda: GridCodecConfig.from_quality(10, means={"low_bits": 0})),
    # fixed-point positions (SPZ's 2^-12 lattice) coded linearly, as curve keys
    "curve-keys-linear": (0, lambda: GridCodecConfig.from_quality(6, drop_fraction=0.5)),
}


@pytest.mark.parametrize("case", list(GRID_CASES))
def test_grid_scene_matches_python(tmp, case):
    degree, make_cfg = GRID_CASES[case]
    n = 257
    gs = smooth_scene(n, degree, seed=len(case))
    if case == "curve-keys-linear":
        codes = np.random.default_rng(1).integers(0, 9001, (n, 3))
        gs = dataclasses.replace(gs, means=torch.from_numpy((codes * 2.0**-12 - 1.0).astype(np.float32)))
    if case == "basis-zero":
        gs = zeroed_sh_rest(gs, 0.3)
    path = tmp / f"grid-{case}.spk"
    keys = case.startswith("curve-keys")  # sorted by the encoder: the keys need their own order
    cfg = make_cfg()
    drops = None
    if case == "dropped-bits-planes":  # depths 0..r of their own per attribute
        rng = np.random.default_rng(5)
        drops = {
            a: rng.integers(0, resolved_low_bits(a, getattr(cfg, a), cfg) + 1, n).astype(np.uint8)
            for a in ("means", "scales", "quats")
        }
    write_grid_scene(path, gs, cfg, grid_index=None if keys else scattered_grid(n, seed=3), drops=drops)
    attrs = SpkReader(path).meta["attributes"]
    assert SpkReader(path).meta["means_transform"] == ("linear" if case == "curve-keys-linear" else "signed-log1p")
    if case == "basis-zero":
        assert attrs["shN"]["zero"] == int(0.3 * n) and SpkReader(path).has("grid.shN.zero")
    if case in ("dropped-bits", "curve-keys"):  # the case reaches the shared class plane
        assert SpkReader(path).has("grid.drop") and attrs["means"]["drop"] == 2 and attrs["quats"]["drop"] == 3
    if case == "dropped-bits-planes":
        assert all(SpkReader(path).has(f"grid.{a}.drop") and attrs[a]["drop"] is True for a in drops)
    means = SpkReader(path).meta["attributes"]["means"]
    assert means.get("encoding", "grid") == ("curve-keys" if keys else "grid")
    index = run_js(path, tmp / f"out-grid-{case}")
    assert index["scene"]["kind"] == "grid" and not index["scene"]["hasColourField"]
    check_sections(path, tmp / f"out-grid-{case}", index)
    ref = load_scene(path)
    atol = {}
    if case.startswith("basis"):  # μ + ĉB summed in a different order (float64 in JS, float32 BLAS here)
        atol["shN"] = 1e-6
    if case == "jxl-lossy":  # one level of the lossy attributes
        meta = SpkReader(path).meta["attributes"]
        for name, key in (("sh0", "sh0"), ("shN", "shN")):
            lo, hi = np.array(meta[name]["lo"]), np.array(meta[name]["hi"])
            atol[key] = float(((hi - lo) / (2 ** meta[name]["bits"] - 1)).max()) * 1.01
    check_geometry(tmp / f"out-grid-{case}", index, ref, atol)


def test_plant_subset_matches_python(tmp, shared_dir):
    from splatpack.formats import load_scene

    src = shared_dir / "splats" / "plant.splat"
    if not src.is_file():
        pytest.skip(f"{src} is absent")
    full = load_scene(src)
    keep = torch.from_numpy(np.random.default_rng(0).choice(len(full), 3000, replace=False))
    gs = GaussianSet(**{f: getattr(full, f)[keep] for f in ("means", "quats", "scales", "opacities", "sh0", "shN")})
    path = tmp / "plant.spk"
    write_grid_scene(path, gs, GridCodecConfig.from_quality(6, sort=False))
    index = run_js(path, tmp / "out-plant")
    check_sections(path, tmp / "out-plant", index)
    check_geometry(tmp / "out-plant", index, load_scene(path))


def test_compact_field_scene_matches_python(tmp):
    path = tmp / "compact-field.spk"
    write_compact(path, compact_code(3000))
    out = tmp / "out-compact-field"
    index = run_js(path, out, CAMERAS)
    scene = index["scene"]
    assert scene["kind"] == "compact" and scene["hasColourField"] and scene["shDegree"] == 0
    assert "sh0" not in scene["arrays"]
    check_sections(path, out, index)
    decoded = dequantize(read_compact(path))
    check_geometry(out, index, compact_geometry(decoded))  # load_scene would bake the field
    np.testing.assert_array_equal(load(out, scene["arrays"]["means"]), decoded.means.numpy())
    np.testing.assert_array_equal(load(out, scene["arrays"]["opacities"]), decoded.opacities.numpy())
    assert len(index["colours"]) == len(CAMERAS)
    for entry in index["colours"]:
        vm = torch.eye(4)
        vm[:3, 3] = -torch.tensor(entry["camera"], dtype=torch.float32)  # R = I: centre = −t
        assert torch.allclose(camera_center(vm), torch.tensor(entry["camera"], dtype=torch.float32))
        with torch.no_grad():
            f = field_colors(decoded.field, decoded.means, vm)[:, 0]
        want = torch.clamp_min(0.5 + SH_C0 * f, 0.0).numpy()
        got = load(out, entry)
        assert want.std() > 0.05  # the colours vary: a real test of the field
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_compact_sh_scene_matches_python(tmp):
    path = tmp / "compact-sh.spk"
    write_compact(path, compact_code(500, sh=True))
    out = tmp / "out-compact-sh"
    index = run_js(path, out, CAMERAS)
    assert index["scene"]["shDegree"] == 2 and not index["scene"]["hasColourField"] and not index["colours"]
    check_sections(path, out, index)
    check_geometry(out, index, load_scene(path))


def test_javascript_unit_tests():
    """viewer/test/spk_unit.test.mjs (node's test runner): CRC, hash-grid levels, folded vs unfolded
    colour field, JPEG XL headers, forged payloads, container errors."""
    cmd = [NODE, "--test", str(VIEWER / "test" / "spk_unit.test.mjs")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "# fail 0" in p.stdout


# --------------------------------------------------------------------------- corrupt files


def _table_entries(data: bytes) -> list[tuple[str, int, int, int]]:
    """(name, entry position of the crc field, payload offset, payload length) per section."""
    from spk_files import table_entries

    out = []
    for name, flags_pos in table_entries(data):
        offset, length = struct.unpack_from("<QQ", data, flags_pos + 1)
        out.append((name, flags_pos + 17, offset, length))
    return out


def _reseal(buf: bytearray, entries: list) -> bytearray:
    """Recompute every payload CRC in the table (``entries`` of the original file) and the header
    CRC: a forged file with valid checksums."""
    for _, crc_pos, offset, length in entries:
        struct.pack_into("<I", buf, crc_pos, zlib.crc32(bytes(buf[offset : offset + length])))
    meta_len, _, _, table_len = struct.unpack_from("<IQII", buf, 12)
    body = bytes(buf[HEADER_SIZE : HEADER_SIZE + meta_len + table_len])
    struct.pack_into("<I", buf, 32, zlib.crc32(body, zlib.crc32(bytes(buf[:32]))))
    return buf


def _corruptions(data: bytes) -> dict[str, bytes]:
    table_entries = _table_entries(data)
    entries = {name: (offset, length) for name, _, offset, length in table_entries}
    meta_len = struct.unpack_from("<I", data, 12)[0]
    table = HEADER_SIZE + meta_len
    out = {
        "empty": b"",
        "magic only": data[:4],
        "truncated header": data[:30],
        "truncated half": data[: len(data) // 2],
        "truncated last byte": data[:-1],
    }
    flip = bytearray(data)
    flip[table + 3] ^= 0x40
    out["flipped table byte"] = bytes(flip)
    for name, (offset, length) in entries.items():
        flip = bytearray(data)
        flip[offset + length // 2] ^= 0x10
        out[f"flipped byte in {name}"] = bytes(flip)
    forged = bytearray(data)
    struct.pack_into("<I", forged, 24, 0xFFFFFFFF)  # num_sections
    out["forged num_sections"] = bytes(_reseal(forged, table_entries))
    forged = bytearray(data)
    struct.pack_into("<Q", forged, 16, 2**60)  # num_gaussians
    out["forged num_gaussians"] = bytes(_reseal(forged, table_entries))
    forged = bytearray(data)
    struct.pack_into("<I", forged, 12, 0xFFFFFFF0)  # meta_length
    out["forged meta_length"] = bytes(forged)
    for name, (offset, length) in entries.items():  # forged array shapes, valid checksums
        forged = bytearray(data)
        struct.pack_into("<Q", forged, offset + 8, 2**40)
        out[f"forged shape of {name}"] = bytes(_reseal(forged, table_entries))
        forged = bytearray(data)  # and damaged contents with valid checksums
        for k in range(offset + 16 + length // 3, offset + length, max(1, length // 7)):
            forged[k] ^= 0x5A
        out[f"resealed garbage in {name}"] = bytes(_reseal(forged, table_entries))
    return out


@pytest.mark.parametrize(
    "kind",
    [
        "compact",
        "grid-png",
        "grid-jxl",
        "grid-webp",
        "grid-ans",
        "grid-rvq",
        "grid-basis",
        "grid-basis-zero",
        "grid-keys",
    ],
)
def test_corrupt_files_give_one_line_spk_errors(tmp, kind):
    src = tmp / f"corrupt-src-{kind}.spk"
    if kind == "compact":
        write_compact(src, compact_code(200))
    elif kind == "grid-rvq":
        cfg = GridCodecConfig.from_quality(3, sh_mode="rvq", rvq_stages=3, rvq_size=7, palette_iterations=2)
        write_grid_scene(src, smooth_scene(80, 1), cfg, grid_index=scattered_grid(80))
    elif kind.startswith("grid-basis"):
        cfg = GridCodecConfig.from_quality(6, sh_mode="basis", basis_rank=5)
        gs = zeroed_sh_rest(smooth_scene(80, 1), 0.4) if kind == "grid-basis-zero" else smooth_scene(80, 1)
        write_grid_scene(src, gs, cfg, grid_index=scattered_grid(80))
    elif kind == "grid-keys":  # positions as curve keys, with dropped low bits
        write_grid_scene(src, smooth_scene(80, 1), GridCodecConfig.from_quality(6, drop_fraction=0.5))
        assert SpkReader(src).meta["attributes"]["means"]["encoding"] == "curve-keys"
    else:
        codec = kind.split("-")[1]
        write_grid_scene(src, smooth_scene(80, 1), lossless(codec), grid_index=scattered_grid(80))
    cases = _corruptions(src.read_bytes())
    files = []
    for i, (label, data) in enumerate(cases.items()):
        f = tmp / f"corrupt-{kind}-{i}.spk"
        f.write_bytes(data)
        files.append((label, f))
    p = subprocess.run(
        [NODE, str(VIEWER / "test" / "check_errors.mjs"), *[str(f) for _, f in files]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    results = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(results) == len(files), p.stderr
    read = (lambda f: dequantize(read_compact(f)).means) if kind == "compact" else (lambda f: load_scene(f).means)
    for (label, f), res in zip(files, results):
        python_refuses = True
        try:
            g = read(f)
            python_refuses = False
        except SplatpackError:
            pass
        if res["ok"]:  # accepted only where Python accepts too (damage the format cannot see)
            assert not python_refuses, (label, "JS accepted a file Python refuses")
            assert len(g) > 0
            continue
        assert res["error"] == "SpkError", (label, res)
        assert "\n" not in res["message"] and res["message"].startswith(str(f)), (label, res["message"])
        assert python_refuses, (label, "JS refused a file Python reads", res["message"])


# --------------------------------------------------------------------------- the same decoder in Chromium

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


class _Server:
    """A local HTTP server: ``/…`` from viewer/, ``/data/NAME`` from a folder; POST /result stores
    the page's report."""

    def __init__(self, data_dir: Path):
        import http.server
        import threading

        outer = self
        self.result: dict | None = None
        self.done = threading.Event()

        class Handler(http.server.SimpleHTTPRequestHandler):
            extensions_map: ClassVar[dict[str, str]] = {
                ".js": "text/javascript",
                ".mjs": "text/javascript",
                ".wasm": "application/wasm",
                ".html": "text/html",
                ".json": "application/json",
                "": "application/octet-stream",
            }

            def __init__(self, *args, **kw):
                super().__init__(*args, directory=str(VIEWER), **kw)

            def translate_path(self, path):
                if path.startswith("/data/"):
                    return str(data_dir / Path(path.split("?")[0]).name)
                return super().translate_path(path)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.result = json.loads(body)
                self.send_response(204)
                self.end_headers()
                outer.done.set()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _crc(path: Path) -> int:
    return zlib.crc32(path.read_bytes())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_decoder_runs_in_chromium(tmp):
    """Chromium decodes the same files to the same bits as Node (sections, scene, field colours),
    its WebAssembly decoders (JPEG XL, WebP) loaded the way a browser loads them."""
    cases = {"compact-field": None, "grid-webp": lossless("webp"), "grid-q10": None}  # q10: 12- and 16-bit JPEG XL
    indexes = {}
    for name, cfg in cases.items():
        path = tmp / f"chromium-{name}.spk"
        if name == "compact-field":
            write_compact(path, compact_code(400, seed=5))
        else:
            cfg = cfg or GridCodecConfig.from_quality(10)
            write_grid_scene(path, smooth_scene(150, 3), cfg, grid_index=scattered_grid(150))
        out = tmp / f"out-chromium-{name}"
        indexes[f"/data/{path.name}"] = (out, run_js(path, out, CAMERAS))
    server = _Server(tmp)
    query = "&".join(f"spk={url}" for url in indexes) + "".join(f"&camera={','.join(map(str, c))}" for c in CAMERAS)
    url = f"http://127.0.0.1:{server.port}/test/browser_decode.html?{query}"
    cmd = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp / 'chrome-profile'}",
        url,
    ]
    browser = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert server.done.wait(180), "Chromium did not report within 180 s"
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
        server.close()
    assert "Chrome" in server.result["userAgent"]
    for url, (out, index) in indexes.items():
        res = server.result["files"][url]
        assert res["ok"], (url, res)
        for sec, e in index["sections"].items():
            got = res["sections"][sec]
            assert (got["dtype"], got["shape"]) == (e["dtype"], e["shape"]), (url, sec)
            assert got["crc"] == _crc(out / e["file"]), (url, sec)
        assert set(res["arrays"]) == set(index["scene"]["arrays"])
        for arr, e in index["scene"]["arrays"].items():
            assert res["arrays"][arr] == _crc(out / e["file"]), (url, arr)
        assert res["colours"] == [_crc(out / e["file"]) for e in index["colours"]], url
