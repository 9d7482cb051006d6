"""Low bits beside the image and per-Gaussian dropped bits (``splatpack.codecs.grid.lowbits``):
the packed stream round-trips, splitting changes no decoded value, dropped bits stay within
the dropped interval and go where renders are least sensitive, and the decoder refuses damaged
streams in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from grid_scenes import one_numba_thread, raster_order, same

from splatpack.codecs.grid import AttributeCoding, GridCodecConfig, encode_grid_scene, read_grid_scene
from splatpack.codecs.grid.config import resolved_low_bits
from splatpack.codecs.grid.encode import coded_sensitivity, scene_drops
from splatpack.codecs.grid.lowbits import (
    drop_bits,
    drop_depths,
    join_low_bits,
    low_bit_count,
    pack_low_bits,
    unpack_low_bits,
)
from splatpack.codecs.grid.values import coded_values
from splatpack.compress.quantise import smallest_three
from splatpack.core.errors import SplatpackError
from splatpack.spk.arrays import encode_array
from splatpack.spk.container import Section, SpkError, SpkReader, write_spk


def test_pack_unpack_round_trip_with_dropped_bits():
    rng = np.random.default_rng(0)
    r, n, c = 5, 301, 3
    low = rng.integers(0, 1 << r, (n, c))
    drop = rng.integers(0, r + 1, n).astype(np.uint8)
    packed = pack_low_bits(low, drop, r)
    count = low_bit_count(drop, r, c)
    assert count == c * int((r - drop.astype(int)).sum()) and packed.size == (count + 7) // 8
    kept = unpack_low_bits(packed, drop, r, c)
    assert np.array_equal(kept, (low >> drop[:, None]) << drop[:, None])  # dropped bits zero
    # the value decodes to the middle of the dropped interval, within 2^(k-1) of the original
    coarse = rng.integers(0, 64, (n, c))
    q = join_low_bits(coarse, kept, drop, r)
    exact = (coarse << r) + low
    assert np.all(np.abs(q - exact) <= np.where(drop > 0, 1 << np.maximum(drop.astype(int) - 1, 0), 0)[:, None])
    assert np.array_equal(q[drop == 0], exact[drop == 0])


def test_drop_depths_takes_the_least_sensitive_fraction():
    s = np.array([5.0, 1.0, 3.0, 1.0, 9.0, 0.5, 7.0, 2.0])
    k = drop_depths(s, 0.5, 3)
    assert k.dtype == np.uint8 and sorted(np.flatnonzero(k)) == [1, 3, 5, 7] and set(k[k > 0]) == {3}
    assert not drop_depths(s, 0.0, 3).any()
    assert drop_bits("quats", 3) == 3 and drop_bits("means", 6) == 3 and drop_bits("means", 5) == 3


def test_levels_split_positions_rotations_and_scales():
    names = ("means", "sh0", "scales", "quats", "opacities")
    cfg = GridCodecConfig.from_quality(6)  # the Hilbert order: smooth positions keep more bits
    assert {a: resolved_low_bits(a, getattr(cfg, a), cfg) for a in names} == {
        "means": 3,
        "sh0": 0,
        "scales": 2,
        "quats": 3,
        "opacities": 0,
    }
    plas = GridCodecConfig.from_quality(6, order="plas")
    got = {a: resolved_low_bits(a, getattr(plas, a), plas) for a in names}
    assert got == {"means": 6, "sh0": 0, "scales": 0, "quats": 3, "opacities": 0}
    lossy = GridCodecConfig(means=AttributeCoding(14, "jxl", 1.0))
    assert resolved_low_bits("means", lossy.means, lossy) == 0
    with pytest.raises(SplatpackError, match="low_bits"):
        GridCodecConfig.from_quality(6, quats={"low_bits": 6}).validate()  # the index needs 2 bits
    with pytest.raises(SplatpackError, match="low_bits"):
        GridCodecConfig(means=AttributeCoding(14, "jxl", 1.0, low_bits=3)).validate()
    with pytest.raises(SplatpackError, match="drop_fraction"):
        GridCodecConfig(drop_fraction=1.0).validate()


def test_split_decodes_to_the_same_gaussians(scene, grid, tmp):
    whole = GridCodecConfig.from_quality(6, means={"low_bits": 0}, quats={"low_bits": 0})
    split = GridCodecConfig.from_quality(6, scales={"low_bits": 2}, sh0={"low_bits": 3})
    paths = []
    for name, cfg in (("whole", whole), ("split", split)):
        with one_numba_thread():
            sections, meta = encode_grid_scene(scene, cfg, grid_index=grid)
        paths.append(tmp / f"lowbits-{name}.spk")
        write_spk(paths[-1], sections, meta, len(scene))
    names = {s.name for s in SpkReader(paths[1]).sections}
    assert {"grid.means.low", "grid.quats.low", "grid.scales.low", "grid.sh0.low"} <= names
    assert not any(n.endswith(".drop") for n in names)
    assert same(read_grid_scene(paths[0]), read_grid_scene(paths[1]))


def test_dropped_bits_stay_in_their_interval_and_follow_sensitivity(scene, grid, tmp):
    cfg = GridCodecConfig.from_quality(6, drop_fraction=0.5, frames="stored")
    with one_numba_thread():
        sections, meta = encode_grid_scene(scene, cfg, grid_index=grid)
    path = tmp / "dropped.spk"
    write_spk(path, sections, meta, len(scene))
    dec = read_grid_scene(path)
    order = raster_order(grid).numpy()
    s = coded_sensitivity(scene, cfg)
    want = coded_values(scene, cfg)
    got = coded_values(dec, cfg)
    e = meta["attributes"]["means"]
    r, bits = e["low_bits"], e["bits"]
    step = (np.float32(e["hi"]) - np.float32(e["lo"])) / np.float32((1 << bits) - 1)
    err = np.abs(got["means"] - want["means"][order]) / step  # in quantisation steps
    drops = scene_drops(scene, cfg)
    dropped = drops["means"][order] > 0
    assert dropped.sum() == len(scene) // 2
    # one class for every attribute: one plane, each attribute's depth in the meta
    names = {sec.name for sec in sections}
    assert "grid.drop" in names and not any(n.endswith(".drop") and n != "grid.drop" for n in names)
    assert e["drop"] == drop_bits("means", r) and meta["attributes"]["quats"]["drop"] == drop_bits("quats", 3)
    assert all(np.array_equal(k > 0, drops["means"] > 0) for k in drops.values())
    assert err[~dropped].max() <= 0.5 + 1e-3  # kept Gaussians: the half-step bound
    assert err[dropped].max() <= (1 << drop_bits("means", r)) / 2 + 0.5 + 1e-3
    assert err[dropped].mean() > err[~dropped].mean()
    # the dropped half is the less sensitive half
    assert np.median(s["means"][order][dropped]) < np.median(s["means"][order][~dropped])
    # rotations drop all their low bits: the smallest three stay within the dropped interval
    e = meta["attributes"]["quats"]
    qstep = (np.float32(e["hi"]) - np.float32(e["lo"])) / np.float32((1 << e["bits"]) - 1)
    small_want, k_want = smallest_three(want["quats"][order])
    small_got, k_got = smallest_three(got["quats"])
    same_k = k_want == k_got
    assert same_k.mean() > 0.9
    qerr = np.abs(small_got - small_want)[same_k] / qstep
    qdropped = (drops["quats"][order] > 0)[same_k]
    assert qerr[~qdropped].max() <= 0.5 + 1e-2
    assert qerr[qdropped].max() <= (1 << e["low_bits"]) / 2 + 0.5 + 1e-2


def _damaged(tmp, name, sections, meta, n):
    path = tmp / f"{name}.spk"
    write_spk(path, sections, meta, n)
    with pytest.raises(SpkError) as info:
        read_grid_scene(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg


def test_damaged_low_bits_are_refused(scene, grid, tmp):
    cfg = GridCodecConfig.from_quality(6, drop_fraction=0.5)
    with one_numba_thread():
        sections, meta = encode_grid_scene(scene, cfg, grid_index=grid)
    n = len(scene)
    payload = next(s.payload for s in sections if s.name == "grid.means.low")
    packed = np.frombuffer(payload[16:], np.uint8).copy()  # after the 1-D raw header
    assert len(encode_array(packed, "raw")) == len(payload)

    def with_section(name, data):
        return [Section(s.name, s.codec, encode_array(data, "raw")) if s.name == name else s for s in sections]

    assert "grid.means.low" in _damaged(tmp, "short", with_section("grid.means.low", packed[:-1]), meta, n)
    r = meta["attributes"]["quats"]["low_bits"]
    count = 3 * (r * n - drop_bits("quats", r) * (n // 2))
    assert count % 8  # the rotations' stream ends in padding
    quats = next(s.payload for s in sections if s.name == "grid.quats.low")
    padded = np.frombuffer(quats[16:], np.uint8).copy()
    padded[-1] |= 1
    assert "padding" in _damaged(tmp, "padding", with_section("grid.quats.low", padded), meta, n)
    missing = [s for s in sections if s.name != "grid.quats.low"]
    assert "grid.quats.low" in _damaged(tmp, "missing", missing, meta, n)
    no_drop = [s for s in sections if s.name != "grid.drop"]
    assert "grid.drop" in _damaged(tmp, "no-drop", no_drop, meta, n)
    cells = meta["grid"]["height"] * meta["grid"]["width"]
    two = [
        Section(s.name, "ans", encode_array(np.full((cells, 1), 2, np.uint16), "ans")) if s.name == "grid.drop" else s
        for s in sections
    ]
    assert "class" in _damaged(tmp, "class-2", two, meta, n)
    cases = (
        ("low_bits", 13, "header"),
        ("drop", 0, "header"),  # a depth is 1..r
        ("drop", 4, "header"),
        ("drop", "2", "header"),
        ("drop", 1, "grid.means.low"),  # another depth: the stream's length disagrees
        ("low_bits", True, "header"),
        ("low_bits", 0, "grid"),
    )
    for key, value, said in cases:  # a forged meta: its own error, or the image's shape disagrees
        m = json.loads(json.dumps(meta))
        m["attributes"]["means"][key] = value
        assert said in _damaged(tmp, f"meta-{key}-{value}", sections, m, n)
