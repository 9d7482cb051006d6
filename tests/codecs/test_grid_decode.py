"""The grid-scene decoder (``splatpack.codecs.grid.decode``) on corrupt files: every problem is
one SpkError naming the file.

Hypothesis cases: corrupted bytes 120, corrupted contents with valid checksums 160 = 280."""

from __future__ import annotations

import dataclasses
import json
import re
import struct

import numpy as np
import pytest
import torch
from grid_scenes import (
    FIELDS,
    smooth_scene,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splatpack.codecs.grid import AttributeCoding, GridCodecConfig, encode_grid_scene, read_grid_scene
from splatpack.codecs.grid.decode import checked_int, checked_range
from splatpack.core.errors import SplatpackError
from splatpack.spk.arrays import encode_array
from splatpack.spk.container import Section, SpkError, write_spk


def _small(**kw) -> tuple[list[Section], dict, int]:
    gs = smooth_scene(n=40, seed=7, degree=1)
    cfg = GridCodecConfig(
        sort=False,
        quats=AttributeCoding(6, "png"),
        shN=AttributeCoding(5, "webp"),
        means=AttributeCoding(14, "webp"),
        **kw,
    )  # a mix of codecs, webp with split bytes
    sections, meta = encode_grid_scene(gs, cfg)
    return sections, meta, len(gs)


def _fixed_point(gs):
    """``gs`` with positions on SPZ's 2⁻¹² fixed-point lattice (3000 steps a channel)."""
    codes = np.random.default_rng(0).integers(0, 3001, (len(gs), 3))
    return dataclasses.replace(gs, means=torch.from_numpy((codes * 2.0**-12 - 0.4).astype(np.float32)))


SMALL_SECTIONS, SMALL_META, SMALL_N = _small()

#: the same scene with the SH rest as a 3-stage residual VQ (labels and codebooks in WebP)
SMALL_FILES = {
    "mixed": (SMALL_SECTIONS, SMALL_META),
    "rvq": _small(sh_mode="rvq", rvq_stages=3, rvq_size=6)[:2],
    # 7 low position bits beside the WebP image, half the Gaussians dropping 4 of them
    "dropped": _small(drop_fraction=0.5)[:2],
    # positions as curve keys (grid.means.lengths, grid.means.rest) with dropped low bits
    "keys": encode_grid_scene(smooth_scene(n=40, seed=7, degree=1), GridCodecConfig.from_quality(6, drop_fraction=0.5)),
    # fixed-point positions coded linearly (means_transform "linear"), one drop class (grid.drop)
    "linear": encode_grid_scene(
        _fixed_point(smooth_scene(n=40, seed=8, degree=1)), GridCodecConfig.from_quality(6, drop_fraction=0.5)
    ),
}
assert SMALL_FILES["keys"][1]["attributes"]["means"]["encoding"] == "curve-keys"
assert (
    SMALL_FILES["linear"][1]["means_transform"] == "linear" and SMALL_FILES["linear"][1]["attributes"]["means"]["drop"]
)

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _read_cleanly(path) -> None:
    try:
        dec = read_grid_scene(path)
    except SplatpackError as exc:
        msg = str(exc)
        assert isinstance(exc, SpkError) and msg.startswith(f"{path}: ") and "\n" not in msg, msg
        return
    assert len(dec) == SMALL_N and dec.shN.shape == (SMALL_N, 3, 3)
    for f in FIELDS:
        assert getattr(dec, f).dtype == torch.float32


@pytest.fixture(scope="module")
def small_file(tmp):
    path = tmp / "small.spk"
    write_spk(path, SMALL_SECTIONS, SMALL_META, SMALL_N)
    read_grid_scene(path)
    return path


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzz_corrupt_bytes(small_file, tmp, data):
    """Any changed, missing or added byte is an SpkError (every byte is checksummed)."""
    blob = bytearray(small_file.read_bytes())
    kind = data.draw(st.sampled_from(["flip", "truncate", "append"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:
        blob += data.draw(st.binary(min_size=1, max_size=9)).replace(b"\x00", b"\x01")
    path = tmp / "fuzz-bytes.spk"
    path.write_bytes(bytes(blob))
    with pytest.raises(SpkError) as exc:
        read_grid_scene(path)
    assert str(exc.value).startswith(f"{path}: ") and "\n" not in str(exc.value)


def _mutate_meta(draw, meta: dict) -> dict:
    meta = json.loads(json.dumps(meta))
    attr = draw(st.sampled_from(list(meta["attributes"])))
    e = meta["attributes"][attr]
    keys = ["bits", "codec", "lo", "hi", "grid", "degree", "kind", "drop", "mode", "version", "space", "encoding"]
    target = draw(st.sampled_from(keys + (["stages", "size", "label_bits"] if e.get("mode") == "rvq" else [])))
    junk = draw(
        st.one_of(st.integers(-3, 70000), st.sampled_from([None, "x", 1.5, [], {}, True, 2**70, float("1e39")]))
    )
    if target in ("bits", "codec", "mode", "stages", "size", "label_bits", "encoding", "drop"):
        e[target] = (
            junk
            if target != "codec"
            else draw(st.sampled_from(["jxl", "png", "webp", "ans", "raw", "deflate", "gif", 3]))
        )
    elif target in ("lo", "hi"):
        vals = e[target]
        if vals and draw(st.booleans()):
            vals[draw(st.integers(0, len(vals) - 1))] = junk
        else:
            e[target] = vals[:-1] if draw(st.booleans()) else [*vals, 0.0]
    elif target == "grid":
        meta["grid"][draw(st.sampled_from(["height", "width"]))] = junk
    elif target == "degree":
        meta["sh_degree"] = junk
    elif target == "kind":
        meta["kind"] = draw(st.sampled_from(["compact-3dgs", "sog", None]))
    elif target == "version":
        meta["version"] = junk
    elif target == "space":
        meta[draw(st.sampled_from(["opacity_space", "means_transform"]))] = junk
    else:
        del meta["attributes"][attr]
    return meta


@pytest.mark.parametrize("small", list(SMALL_FILES))
@settings(FUZZ, max_examples=160)
@given(data=st.data())
def test_fuzz_corrupt_contents_with_valid_checksums(tmp, small, data):
    """A well-formed container whose contents are wrong (payload bytes, forged array headers,
    swapped sections, a malformed meta) decodes cleanly or raises one SpkError."""
    base_sections, base_meta = SMALL_FILES[small]
    sections = [Section(s.name, s.codec, s.payload, s.required) for s in base_sections]
    meta = base_meta
    n = SMALL_N
    kind = data.draw(st.sampled_from(["payload", "header", "swap", "drop", "meta", "count"]))
    i = data.draw(st.integers(0, len(sections) - 1))
    p = bytearray(sections[i].payload)
    if kind == "payload":
        op = data.draw(st.sampled_from(["flip", "truncate", "append"]))
        if op == "flip":
            for _ in range(data.draw(st.integers(1, 4))):
                j = data.draw(st.integers(0, len(p) - 1))
                p[j] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "truncate":
            p = p[: data.draw(st.integers(0, len(p) - 1))]
        else:
            p += data.draw(st.binary(min_size=1, max_size=16))
        sections[i].payload = bytes(p)
    elif kind == "header":  # forge the array header's dtype, ndim or a dimension
        at = data.draw(st.sampled_from([0, 1, 8, 16, 24]))
        if at < 8:
            p[at] = data.draw(st.integers(0, 12))
        elif at + 8 <= len(p):
            p[at : at + 8] = struct.pack("<Q", data.draw(st.sampled_from([0, 1, 3, 41, 1000, 2**20, 2**40])))
        sections[i].payload = bytes(p)
    elif kind == "swap":
        j = data.draw(st.integers(0, len(sections) - 1))
        sections[i].payload, sections[j].payload = sections[j].payload, sections[i].payload
        sections[i].codec, sections[j].codec = sections[j].codec, sections[i].codec
    elif kind == "drop":
        del sections[i]
    elif kind == "meta":
        meta = _mutate_meta(data.draw, base_meta)
    else:
        n = data.draw(st.sampled_from([0, 1, SMALL_N - 1, SMALL_N + 1, 10**6]))
    path = tmp / "fuzz-contents.spk"
    try:
        write_spk(path, sections, meta, n)
    except SpkError:
        return  # e.g. a count implausible for the file: the writer refuses it already
    _read_cleanly(path)


def test_specific_errors(tmp):
    sections, meta, n = SMALL_SECTIONS, SMALL_META, SMALL_N
    path = tmp / "err.spk"

    def expect(pattern, secs=sections, m=meta, count=n):
        write_spk(path, secs, m, count)
        with pytest.raises(SpkError, match=pattern):
            read_grid_scene(path)

    expect(r"not a grid scene \(kind 'compact-3dgs'", m={**meta, "kind": "compact-3dgs"})
    expect("section 'grid.sh0' is missing", secs=[s for s in sections if s.name != "grid.sh0"])
    expect("malformed grid-scene header", m={**meta, "grid": {"height": 3, "width": 4}})
    wrong = encode_array(np.zeros((5, 7, 3), np.uint8), "jxl")
    expect(
        r"array 'grid.sh0' \(jxl\): shape \(5, 7, 3\) differs from the expected \(6, 7, 3\)",
        secs=[Section(s.name, s.codec, wrong if s.name == "grid.sh0" else s.payload) for s in sections],
    )
    big = encode_array(np.full((6, 7, 3), 255, np.uint8), "jxl")
    over = {**meta, "attributes": {**meta["attributes"], "sh0": {**meta["attributes"]["sh0"], "bits": 7}}}
    expect(
        "'grid.sh0' has values over 7 bits",
        secs=[Section(s.name, s.codec, big if s.name == "grid.sh0" else s.payload) for s in sections],
        m=over,
    )
    expect(
        "uses codec 'png', the header says 'jxl'",
        secs=[Section(s.name, "png" if s.name == "grid.sh0" else s.codec, s.payload) for s in sections],
    )
    empty = encode_array(np.array([3, 2], np.uint32), "deflate")
    expect(
        "strictly increasing",
        secs=[Section(s.name, s.codec, empty if s.name == "grid.empty" else s.payload) for s in sections],
    )
    with pytest.raises(SpkError, match="does not exist"):
        read_grid_scene(tmp / "missing.spk")
    with pytest.raises(SpkError) as missing:
        read_grid_scene(tmp / "missing.spk")
    assert re.fullmatch(r"[^\n]+", str(missing.value))


def test_meta_checks():
    assert checked_int(3, 1, 3, "x") == 3
    for bad in (0, 4, 2.0, True, "2", None):
        with pytest.raises(ValueError, match=r"x must be an integer in 1\.\.3"):
            checked_int(bad, 1, 3, "x")
    lo, hi = checked_range({"lo": [0, -1.5], "hi": [1, -1.5]}, 2, "a")
    assert lo.dtype == hi.dtype == np.float32 and lo.tolist() == [0, -1.5] and hi.tolist() == [1, -1.5]
    for entry, pattern in [
        ({"lo": [0.0], "hi": [1.0]}, "a needs 2 lo/hi values"),
        ({"lo": (0.0, 0.0), "hi": [1.0, 1.0]}, "a needs 2 lo/hi values"),
        ({"lo": [0.0, None], "hi": [1.0, 1.0]}, "a lo/hi are not numbers"),
        ({"lo": [0.0, 2.0], "hi": [1.0, 1.0]}, "a has an invalid range"),
        ({"lo": [0.0, 0.0], "hi": [1.0, 1e39]}, "a has an invalid range"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            checked_range(entry, 2, "a")
