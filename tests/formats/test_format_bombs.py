"""Decompression bombs: files of a few KB whose streams are genuine but claim millions of
Gaussians (SPZ zstd and gzip, SOG with a 4096² grid, a ``.spk`` padded to 8 Gaussians a byte).
Each is refused before anything sized by its count is allocated (peak RSS of a subprocess that
reads them all), with one line naming the limit and ``--max-gaussians``; real files still load;
an explicit ceiling vouches for a count and a low one refuses a real file."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from format_scenes import random_set

from splatpack.apps.cli import main
from splatpack.core import GaussianSet, SplatpackError, limits
from splatpack.formats import load_scene, save_scene
from splatpack.formats.sog import load_sog
from splatpack.formats.sog.read import GAUSSIANS_PER_BYTE as SOG_PER_BYTE
from splatpack.formats.sog.textures import encode_webp
from splatpack.formats.spk import write_spk_scene
from splatpack.formats.spz import GZIP_GAUSSIANS_PER_BYTE, ZSTD_GAUSSIANS_PER_BYTE, load_spz
from splatpack.spk.layout import HEADER, HEADER_SIZE

SPZ_SECTIONS = (9, 1, 3, 3, 4)  # bytes per Gaussian of positions, alphas, colours, scales, rotations (v3/v4, SH 0)


# ---- the bombs ---------------------------------------------------------------------------------
def zstd_rle_frame(size: int) -> bytes:
    """A zstd frame of ``size`` zero bytes: one 4-byte RLE block per 128 KiB."""
    out = bytearray(struct.pack("<IBI", 0xFD2FB528, 0xA0, size))  # single segment, 4-byte content size
    left = size
    while left:
        block = min(left, 128 << 10)
        left -= block
        out += (int(left == 0) | 1 << 1 | block << 3).to_bytes(3, "little") + b"\0"
    return bytes(out)


def spz_v4_bomb(n: int) -> bytes:
    """SPZ v4 (NGSP + zstd) of ``n`` identical Gaussians, SH degree 0."""
    frames = [zstd_rle_frame(per * n) for per in SPZ_SECTIONS]
    head = struct.pack("<IIIBBBBI12x", 0x5053474E, 4, n, 0, 12, 0, len(frames), 32)
    toc = b"".join(struct.pack("<QQ", len(f), per * n) for f, per in zip(frames, SPZ_SECTIONS))
    return head + toc + b"".join(frames)


def spz_v3_bomb(n: int) -> bytes:
    """SPZ v3 (one gzip stream) of ``n`` identical Gaussians, SH degree 0, deflated 1 MiB at a time."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [z.compress(struct.pack("<IIIBBBB", 0x5053474E, 3, n, 0, 12, 0, 0))]
    left, zeros = sum(SPZ_SECTIONS) * n, bytes(1 << 20)
    while left:
        out.append(z.compress(zeros[: min(left, len(zeros))]))
        left -= min(left, len(zeros))
    return b"".join(out) + z.flush()


def sog_bomb(side: int) -> bytes:
    """A SOG v2 bundle of ``side²`` identical Gaussians (constant lossless WebP images)."""
    px = lambda *rgba: encode_webp(np.broadcast_to(np.array(rgba, np.uint8), (side, side, 4)))
    zero = px(0, 0, 0, 255)
    images = {"means_l.webp": zero, "means_u.webp": zero, "scales.webp": zero, "sh0.webp": px(0, 0, 0, 200)}
    images["quats.webp"] = px(128, 128, 128, 252)
    book = [0.0] * 256
    meta = {
        "version": 2,
        "count": side * side,
        "means": {"mins": [0, 0, 0], "maxs": [1, 1, 1], "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": book, "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": book, "files": ["sh0.webp"]},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json", json.dumps(meta))
        for name, data in images.items():
            z.writestr(name, data)
    return buf.getvalue()


def spk_bomb(small: Path, n: int, size: int = 1 << 20) -> bytes:
    """A grid ``.spk`` whose header claims ``n`` Gaussians, zero-padded to ``size`` bytes so the
    container's bound of 8 Gaussians a byte passes (the header checksum recomputed)."""
    raw = bytearray(small.read_bytes())
    raw[16:24] = struct.pack("<Q", n)
    meta_len, table_len = struct.unpack_from("<I", raw, 12)[0], struct.unpack_from("<I", raw, 28)[0]
    body = bytes(raw[HEADER_SIZE : HEADER_SIZE + meta_len + table_len])
    struct.pack_into("<I", raw, HEADER.size, zlib.crc32(body, zlib.crc32(bytes(raw[: HEADER.size]))))
    return bytes(raw) + bytes(size - len(raw))


def constant_set(n: int) -> GaussianSet:
    return GaussianSet(
        means=torch.zeros(n, 3),
        quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        scales=torch.full((n, 3), -4.0),
        opacities=torch.zeros(n),
        sh0=torch.zeros(n, 1, 3),
        shN=torch.zeros(n, 0, 3),
    )


def lattice_set(n: int) -> GaussianSet:
    """Identical Gaussians on a regular lattice: the most compressible scene that is still a scene."""
    s = round(n ** (1 / 3)) + 1
    i = torch.arange(n)
    g = constant_set(n)
    means = torch.stack([i % s, i // s % s, i // (s * s)], 1).float() * 0.01
    return GaussianSet(means, g.quats, g.scales, g.opacities, g.sh0, g.shN)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """The bombs of the issue: name → file."""
    d = tmp_path_factory.mktemp("bombs")
    small = write_spk_scene(constant_set(4096), d / "small.spk", quality=0, sort=False)
    files = {
        "spz-zstd-16M": (spz_v4_bomb(16_000_000), ".spz"),
        "spz-zstd-4M": (spz_v4_bomb(4_000_000), ".spz"),
        "spz-gzip-4M": (spz_v3_bomb(4_000_000), ".spz"),
        "sog-4096": (sog_bomb(4096), ".sog"),
        "spk-8M": (spk_bomb(small, 8 << 20), ".spk"),
    }
    out = {}
    for name, (data, suffix) in files.items():
        out[name] = d / f"{name}{suffix}"
        out[name].write_bytes(data)
    return out


# ---- tests ---------------------------------------------------------------------------------------
def test_the_bombs_are_small_and_their_streams_genuine(bombs, tmp_path):
    sizes = {name: p.stat().st_size for name, p in bombs.items()}
    assert sizes["spz-zstd-16M"] < 10_000 and sizes["spz-zstd-4M"] < 3_000 and sizes["sog-4096"] < 8_000
    assert sizes["spz-gzip-4M"] < 4_000_000 * 20 / 1000  # at deflate's ratio
    assert sizes["spk-8M"] == 1 << 20 and len(zlib.compress(bombs["spk-8M"].read_bytes())) < 8_000
    # the same builders at a small count give files every reader decodes
    for data, suffix, n in [
        (spz_v4_bomb(1000), ".spz", 1000),
        (spz_v3_bomb(1000), ".spz", 1000),
        (sog_bomb(16), ".sog", 256),
    ]:
        path = tmp_path / f"small{suffix}"
        path.write_bytes(data)
        gs = load_scene(path)
        assert len(gs) == n and torch.isfinite(gs.means).all()


@pytest.mark.parametrize(
    "name, claim",
    [
        ("spz-zstd-16M", "16,000,000 Gaussians"),
        ("spz-zstd-4M", "4,000,000 Gaussians"),
        ("spz-gzip-4M", "4,000,000 Gaussians"),
        ("sog-4096", "16,777,216 Gaussians"),
        ("spk-8M", "8,388,608 Gaussians"),
    ],
)
def test_a_bomb_is_refused_in_one_line_naming_the_flag(bombs, name, claim):
    with pytest.raises(SplatpackError) as err:
        load_scene(bombs[name])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(bombs[name]))
    assert f"claims {claim} in " in msg and "more than such a file can hold" in msg and "--max-gaussians" in msg


def test_a_sog_folder_bomb_is_refused(bombs, tmp_path):
    with zipfile.ZipFile(bombs["sog-4096"]) as z:
        z.extractall(tmp_path / "sog")
    with pytest.raises(SplatpackError, match=r"claims 16,777,216 Gaussians in .* more than such a file can hold"):
        load_scene(tmp_path / "sog")


def test_the_cli_prints_one_line_and_exits_2(bombs, tmp_path, capsys):
    for name in ("spz-zstd-16M", "sog-4096", "spk-8M"):
        assert main(["export", str(bombs[name]), "-o", str(tmp_path / "x.ply")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and "--max-gaussians" in err
    assert main(["info", str(bombs["spk-8M"])]) == 2
    assert "more than such a file can hold" in capsys.readouterr().err


READ_ALL = """
import resource, sys
from splatpack.core import SplatpackError
from splatpack.formats import load_scene
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
assert len(load_scene(sys.argv[1])) == 40
print("baseline", rss())
for path in sys.argv[2:]:
    try:
        load_scene(path)
        print("loaded", path)
    except SplatpackError:
        print("refused", rss())
"""


def test_refusals_happen_before_allocation(bombs, tmp_path):
    """One subprocess reads a small valid file (its imports and a decode set the baseline), then
    every bomb: the peak RSS may not grow by more than a few MB (decoding them took 1.5–4.6 GB)."""
    valid = save_scene(random_set(40), tmp_path / "v.spz")
    paths = [str(p) for p in bombs.values()]
    out = subprocess.run(
        [sys.executable, "-c", READ_ALL, str(valid), *paths], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line.split() for line in out.stdout.splitlines()]
    assert [w[0] for w in lines] == ["baseline"] + ["refused"] * len(paths), out.stdout
    baseline, peak = int(lines[0][1]), max(int(w[1]) for w in lines[1:])
    assert peak - baseline < 64 << 20 and peak < 3 << 30, (baseline, peak)  # cold numba cache: compiling counts


def test_an_explicit_ceiling_vouches_for_a_count(tmp_path, monkeypatch):
    """Below the ceiling, a count above what the bytes hold passes once the caller sets a ceiling."""
    monkeypatch.setattr(limits, "ALWAYS_PLAUSIBLE", 1000)
    path = tmp_path / "c.spz"
    path.write_bytes(spz_v4_bomb(20_000))
    with pytest.raises(SplatpackError, match=r"more than such a file can hold .*--max-gaussians 20000 or more"):
        load_scene(path)
    assert len(load_scene(path, max_gaussians=20_000)) == 20_000
    with pytest.raises(SplatpackError, match=r"more than the limit of 19,999; if it is genuine, raise --max-gaussians"):
        load_scene(path, max_gaussians=19_999)


def test_the_ceiling_refuses_every_format(shared_dir, tmp_path):
    plant = shared_dir / "splats" / "plant.splat"
    gs = load_scene(plant)
    files = [plant, save_scene(gs, tmp_path / "p.ply"), save_scene(gs, tmp_path / "p.npz")]
    files += [save_scene(gs, tmp_path / "p.spz"), save_scene(gs, tmp_path / "p3.spz", version=3)]
    files += [save_scene(gs, tmp_path / "p.sog"), write_spk_scene(gs, tmp_path / "p.spk", quality=0, sort=False)]
    for path in files:
        with pytest.raises(SplatpackError, match=r"claims 113,648 Gaussians \(about .*limit of 100,000"):
            load_scene(path, max_gaussians=100_000)
        assert len(load_scene(path)) == 113_648, path
    with limits.gaussian_limit(100_000), pytest.raises(SplatpackError, match="limit of 100,000"):
        load_scene(plant)
    assert main(["export", str(plant), "-o", str(tmp_path / "x.ply"), "--max-gaussians", "100000"]) == 2
    assert main(["export", str(plant), "-o", str(tmp_path / "x.ply"), "--max-gaussians", "200000"]) == 0


def test_the_flag_is_on_every_command_that_reads_a_scene(capsys):
    assert main(["export", "x.spz", "-o", "y.ply", "--max-gaussians", "0"]) == 2
    assert "--max-gaussians: expected an integer ≥ 1, got '0'" in capsys.readouterr().err
    for command in ("export", "compress", "info", "render", "view", "decompress"):
        assert main([command, "--help"]) == 0
        assert "--max-gaussians N" in capsys.readouterr().out, command


def test_the_limit_nests_and_is_checked(samples, tmp_path):
    path = tmp_path / "c.compressed.ply"
    path.write_bytes(samples["cply"][0])
    with limits.gaussian_limit(200):
        assert limits.current_limit() == limits.GaussianLimit(200, explicit=True)
        with limits.gaussian_limit(None):
            assert limits.max_gaussians() == 200
        with pytest.raises(SplatpackError, match=r"claims 300 Gaussians .* limit of 200"):
            load_scene(path)
        assert len(load_scene(path, max_gaussians=300)) == 300
    assert limits.current_limit() == limits.GaussianLimit()
    for bad in (-1, 1.5, True):
        with pytest.raises(SplatpackError, match="Gaussian limit"), limits.gaussian_limit(bad):
            pass


def test_real_files_still_load(shared_dir, tmp_path):
    biker = shared_dir / "splats" / "biker.spz"
    gs = load_scene(biker)
    assert len(gs) == 152_746
    assert len(load_sog(save_scene(gs, tmp_path / "b.sog"))) == 152_746
    assert len(load_spz(save_scene(gs, tmp_path / "b3.spz", version=3))) == 152_746


@pytest.mark.parametrize(
    "fmt, ext, options, bound",
    [
        ("spz4", ".spz", {}, ZSTD_GAUSSIANS_PER_BYTE),
        ("spz3", ".spz", {"version": 3}, GZIP_GAUSSIANS_PER_BYTE),
        ("sog", ".sog", {}, SOG_PER_BYTE),
    ],
)
def test_the_bounds_leave_a_margin_over_a_lattice(tmp_path, fmt, ext, options, bound):
    """A regular lattice of identical Gaussians, as the real encoders write it, holds a fraction of
    the Gaussians a byte that a reader accepts."""
    n = 1 << 16
    path = save_scene(lattice_set(n), tmp_path / f"l{ext}", **options)
    assert n / path.stat().st_size < bound / 4
