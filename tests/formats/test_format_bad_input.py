"""Bad input to every reader, through :func:`splatpack.formats.load_scene`: truncation, byte flips
(also inside the compressed streams and zip members) and forged Gaussian counts, property-based
(several hundred cases), and a 10⁹-Gaussian header refused quickly with little memory. Every
refusal is a one-line :class:`~splatpack.core.SplatpackError` naming the file."""

from __future__ import annotations

import gzip
import io
import json
import math
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch
import zstandard
from format_scenes import FUZZ, random_set
from hypothesis import given, settings
from hypothesis import strategies as st

from splatpack.core import GaussianSet, SplatpackError
from splatpack.formats import load_scene
from splatpack.formats.ply import save_ply

FUZZED = ["splat", "spz3", "spz4", "cply", "sog"]  # keys of the ``samples`` fixture (conftest.py)


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


@pytest.mark.parametrize("fmt", FUZZED)
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


@pytest.mark.parametrize("fmt", FUZZED)
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
