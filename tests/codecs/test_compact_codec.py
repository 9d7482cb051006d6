"""Compact files from synthetic streams (no training): round trip, bad input, the scene codec and its
registry entry (splatpack.codecs.compact.streams / decode / codec / field)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compact_scenes import make_code, synthetic_field

from splatpack.codecs.compact import (
    COMPACT_SCENE_CODEC,
    FORMAT_KIND,
    CompactCodecConfig,
    CompactScene,
    dequantize,
    field_box_meta,
    read_compact,
    unpack_views,
    write_compact,
)
from splatpack.codecs.compact.field import dequantize_field, quantize_field
from splatpack.codecs.registry import SCENE_CODECS, read_scene, scene_codec
from splatpack.core.errors import SplatpackError
from splatpack.spk.container import Section, SpkError, write_spk

SMALL_FIELD = {"grid": {"n_levels": 4, "log2_hashmap_size": 10}}


def synthetic_code(n: int = 300, seed: int = 0):
    return make_code(n, seed, field_cfg=SMALL_FIELD)


def test_synthetic_code_round_trips_bit_exactly(tmp_path):
    code = synthetic_code()
    size = write_compact(tmp_path / "s.spk", code)
    assert size == (tmp_path / "s.spk").stat().st_size
    back = read_compact(tmp_path / "s.spk")
    for f in ("morton", "opacity_q", "scale_idx", "rot_idx", "scale_books", "rot_books", "hash_q", "views"):
        assert np.array_equal(getattr(code, f), getattr(back, f)), f
    assert all(np.array_equal(a, b) for a, b in zip(code.mlp, back.mlp))
    a, b = dequantize(code), dequantize(back)
    for f in ("means", "quats", "scales", "opacities"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    assert torch.equal(a.field.hash_params, b.field.hash_params)


def test_bad_compact_files_give_one_line_errors(tmp_path):
    """Truncated, bit-flipped and header-forged files: SplatpackError, one line, never a crash
    (hypothesis drives 300 mutations here; the spk tests fuzz the container itself)."""
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st

    good = tmp_path / "good.spk"
    write_compact(good, synthetic_code())
    data = good.read_bytes()
    bad = tmp_path / "bad.spk"

    @settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        kind=st.sampled_from(["truncate", "flip", "forge"]),
        pos=st.integers(0, len(data) - 1),
        bit=st.integers(0, 7),
        value=st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1, 10**9]),
    )
    def check(kind, pos, bit, value):
        buf = bytearray(data)
        if kind == "truncate":
            buf = buf[:pos]
        elif kind == "flip":
            buf[pos] ^= 1 << bit
        else:  # forge a u32 in the fixed header (counts, lengths)
            off = min(pos, 31) & ~3
            buf[off : off + 4] = int(value % 2**32).to_bytes(4, "little")
        assume(bytes(buf) != data)
        bad.write_bytes(bytes(buf))
        with pytest.raises(SplatpackError) as e:
            dequantize(read_compact(bad))
        assert "\n" not in str(e.value) and str(bad) in str(e.value)

    check()


def test_cli_reports_a_corrupt_spk_in_one_line(tmp_path, capsys):
    from splatpack.apps.cli import main

    p = tmp_path / "s.spk"
    write_compact(p, synthetic_code())
    raw = bytearray(p.read_bytes())
    raw[-5] ^= 0xFF
    p.write_bytes(bytes(raw))
    assert main(["decompress", str(p), "-o", str(tmp_path / "o.ply")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(p) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.ply").exists()
    assert main(["info", str(tmp_path / "missing.spk")]) == 2


def test_export_refuses_bad_input(tmp_path):
    from splatpack.apps.cli import main

    bad = tmp_path / "x.spk"
    bad.write_bytes(b"\x89SPK" + b"\0" * 10)
    assert main(["export", str(bad), "-o", str(tmp_path / "y.ply")]) == 2
    assert main(["export", str(tmp_path / "missing.ply"), "-o", str(tmp_path / "y.ply")]) == 2
    assert not (tmp_path / "y.ply").exists()


# ---- the scene codec and its registry entry -------------------------------------------------------


def test_registry_decodes_a_compact_file_with_the_compact_codec(tmp_path):
    assert scene_codec(FORMAT_KIND) is COMPACT_SCENE_CODEC is SCENE_CODECS["compact-3dgs"]
    code = synthetic_code()
    COMPACT_SCENE_CODEC.encode(code).write(tmp_path / "s.spk")
    codec, scene = read_scene(tmp_path / "s.spk")
    assert codec is COMPACT_SCENE_CODEC and isinstance(scene, CompactScene) and len(scene) == code.num_gaussians
    assert [tuple(v[2:]) for v in unpack_views(scene.views)] == [(32, 32)]
    gs = codec.gaussians(scene)  # the colour field baked into SH 3 over the stored camera
    assert len(gs) == code.num_gaussians and gs.sh_degree == 3


def test_the_compact_decoder_refuses_another_kind(tmp_path):
    path = tmp_path / "other.spk"
    write_spk(path, [Section("x", "raw", b"")], meta={"kind": "sog-grid"}, num_gaussians=0)
    with pytest.raises(SpkError, match="not a compact scene"):
        read_compact(path)
    with pytest.raises(SpkError, match=r"unknown \.spk scene kind"):
        scene_codec("compact-3dgs-v9", path)


def test_colour_field_quantisation_keeps_its_box_and_zeroes_small_entries():
    field = synthetic_field(torch.Generator().manual_seed(1), SMALL_FIELD)
    cfg = CompactCodecConfig(hash_prune=0.2, hash_bits=6)
    hash_q, mlp, meta = quantize_field(field, cfg)
    assert meta["aabb"] == field_box_meta(field) == [field.aabb_min.tolist(), field.aabb_max.tolist()]
    small = field.hash_params.detach().abs().numpy() < 0.2
    assert hash_q.dtype == np.int8 and np.all(hash_q[small] == 0) and np.abs(hash_q).max() <= 31
    back = dequantize_field(meta, hash_q, mlp)
    err = (back.hash_params.detach() - field.hash_params.detach()).abs()
    assert float(err[torch.from_numpy(~small)].max()) <= meta["step"] / 2 + 1e-6


def test_a_decoded_scene_moves_to_the_rendering_device_with_its_colour_field(tmp_path):
    """Training on CUDA evaluates the decoded file there: every tensor and the field must follow
    (a CPU tensor reaching gsplat's kernels failed on the GPU). The meta device stands in for CUDA."""
    write_compact(tmp_path / "s.spk", synthetic_code())
    scene = dequantize(read_compact(tmp_path / "s.spk"))
    moved = scene.to("meta")
    tensors = [moved.means, moved.quats, moved.scales, moved.opacities, *moved.field.parameters()]
    assert tensors and all(t.device.type == "meta" for t in tensors)
    assert scene.means.device.type == "cpu" and next(scene.field.parameters()).device.type == "cpu"
    assert len(moved) == len(scene) and moved.meta is scene.meta
