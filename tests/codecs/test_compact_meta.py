"""The compact-scene header schema (splatpack.codecs.compact.schema): a forged header is refused in
one line naming the key, before any tensor or module is built; every file the encoder writes decodes.

Bad files are forged from a real one: its sections reused, its meta edited and written again."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import textwrap
from itertools import pairwise

import numpy as np
import pytest
import torch
from compact_scenes import make_code

from splatpack.codecs.compact import (
    CompactCodecConfig,
    dequantize,
    read_compact,
    write_compact,
)
from splatpack.codecs.compact.schema import MAX_TABLE_PARAMS, compact_layout
from splatpack.spk.arrays import encode_array
from splatpack.spk.container import Section, SpkError, SpkReader, write_spk


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("compact_meta") / "good.spk"
    write_compact(path, make_code())
    return path


def forge(src, dst, edit=None, replace: dict[str, Section] | None = None):
    """Rewrite ``src`` as ``dst`` with ``edit(meta)`` applied and the sections in ``replace`` swapped in."""
    with SpkReader(src) as r:
        meta = copy.deepcopy(r.meta)
        sections = [Section(e.name, e.codec, r.read(e.name), e.required) for e in r.sections]
        n = r.num_gaussians
    if edit is not None:
        edit(meta)
    sections = [(replace or {}).get(s.name, s) for s in sections]
    write_spk(dst, sections, meta, n)
    return dst


def refusal(path) -> str:
    with pytest.raises(SpkError) as e:
        dequantize(read_compact(path))
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


def setter(dotted: str, value):
    *parents, last = dotted.split(".")

    def edit(meta):
        d = meta
        for k in parents:
            d = d[k]
        d[last] = value

    return edit


def deleter(dotted: str):
    *parents, last = dotted.split(".")

    def edit(meta):
        d = meta
        for k in parents:
            d = d[k]
        del d[last]

    return edit


def wrong_mlp_shapes(meta):
    meta["colour"]["mlp_shapes"][0] = [64, 25]


BAD_META = {
    "position.hi with 2 values": (setter("position.hi", [1.0, 2.0]), "'position.hi'"),
    "position.lo a string": (setter("position.lo", "0,0,0"), "'position.lo'"),
    "position.lo not finite": (setter("position.lo", [0.0, 1e39, 0.0]), r"'position.lo\[1\]'"),
    "position.lo a huge integer": (setter("position.lo", [0, 10**400, 0]), r"'position.lo\[1\]'"),
    "position.hi below lo": (setter("position.hi", [-9.0, -9.0, -9.0]), "'position.hi' is below"),
    "position.bits 22": (setter("position.bits", 22), "'position.bits'"),
    "opacity.bits an object": (setter("opacity.bits", {}), "'opacity.bits'"),
    "opacity.bits 99": (setter("opacity.bits", 99), "'opacity.bits'"),
    "opacity.bits true": (setter("opacity.bits", True), "'opacity.bits'"),
    "rvq.stages a string": (setter("rvq.stages", "3"), "'rvq.stages'"),
    "rvq.codebook_size 300": (setter("rvq.codebook_size", 300), "'rvq.codebook_size'"),
    "colour.aabb 3": (setter("colour.aabb", 3), "'colour.aabb'"),
    "colour.aabb empty box": (setter("colour.aabb", [[0, 0, 0], [1, 0, 1]]), "'colour.aabb' max must exceed"),
    "colour.config.backend null": (setter("colour.config.backend", None), "'colour.config.backend'"),
    "colour.config unknown key": (setter("colour.config.depth", 3), "'colour.config.depth' is not a key"),
    "colour.config.grid.n_levels 0": (setter("colour.config.grid.n_levels", 0), "'colour.config.grid.n_levels'"),
    "colour.config.grid features 3": (
        setter("colour.config.grid.n_features_per_level", 3),
        "'colour.config.grid.n_features_per_level'",
    ),
    "colour.config.dir_sh_degree 4": (setter("colour.config.dir_sh_degree", 4), "'colour.config.dir_sh_degree'"),
    "colour.kind unknown": (setter("colour.kind", "neural-texture"), "'colour.kind'"),
    "colour.mlp_shapes inconsistent": (wrong_mlp_shapes, "'colour.mlp_shapes'"),
    "colour.mlp_shapes a number": (setter("colour.mlp_shapes", 5), "'colour.mlp_shapes'"),
    "colour.step negative": (setter("colour.step", -0.5), "'colour.step'"),
    "colour.bits 1": (setter("colour.bits", 1), "'colour.bits'"),
    "scale_space unknown": (setter("scale_space", "sqrt"), "'scale_space'"),
    "background of 2 values": (setter("background", [0, 0]), "'background'"),
    "colour.step missing": (deleter("colour.step"), "'colour.step' is missing"),
    "position missing": (deleter("position"), "'position' is missing"),
    "colour.config.grid.log2_hashmap_size missing": (
        deleter("colour.config.grid.log2_hashmap_size"),
        "'colour.config.grid.log2_hashmap_size' is missing",
    ),
}


@pytest.mark.parametrize("case", list(BAD_META))
def test_a_forged_header_is_one_clean_error_naming_its_key(good, tmp_path, case):
    edit, match = BAD_META[case]
    msg = refusal(forge(good, tmp_path / "bad.spk", edit))
    assert msg.count("compact-scene header:") == 1
    assert re.search(match, msg), msg


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((1, 26), np.float32), "section 'views' holds"),
        (np.zeros(27, np.float32), "section 'views' holds"),
        (np.zeros((1, 27), np.float64), "array 'views' (raw): shape (1, 27) differs from the expected (2, 27)"),
        (np.zeros((2, 27), np.float16), "array 'views' (raw): shape (2, 27) differs from the expected (1, 27)"),
    ],
)
def test_a_views_section_of_the_wrong_shape_is_refused(good, tmp_path, array, match):
    views = Section("views", "raw", encode_array(array, "raw"), required=False)
    assert match in refusal(forge(good, tmp_path / "bad.spk", replace={"views": views}))


def test_sections_must_hold_what_the_header_implies(good, tmp_path):
    def smaller_mlp(meta):  # a consistent header whose MLP the colour.mlp section does not hold
        meta["colour"]["config"]["hidden"] = 32
        shapes = meta["colour"]["mlp_shapes"]
        shapes[:] = [[32, shapes[0][1]], [32], [32, 32], [32], [3, 32], [3]]

    assert "section 'colour.mlp' holds" in refusal(forge(good, tmp_path / "a.spk", smaller_mlp))
    bigger = setter("colour.config.grid.log2_hashmap_size", 9)  # each (hashed) level needs 512 entries
    assert "'colour.hash.00' (ans): shape (256, 2) differs from the expected (512, 2)" in refusal(
        forge(good, tmp_path / "b.spk", bigger)
    )

    def one_more_level(meta):
        meta["colour"]["config"]["grid"]["n_levels"] = 4
        meta["colour"]["mlp_shapes"][0][1] += 2  # two more features into the MLP

    assert "section 'colour.hash.03' is missing" in refusal(forge(good, tmp_path / "c.spk", one_more_level))
    assert "section 'colour.sh' is missing" in refusal(
        forge(good, tmp_path / "d.spk", setter("colour", {"kind": "sh", "bases": 16}))
    )
    deflated = Section("colour.mlp", "deflate", encode_array(np.zeros(3, np.float16), "deflate"))
    assert "uses codec 'deflate'" in refusal(forge(good, tmp_path / "e.spk", replace={"colour.mlp": deflated}))
    fewer_bits = refusal(forge(good, tmp_path / "f.spk", setter("position.bits", 8)))  # 3 bytes a Gaussian, not 6
    assert "'positions'" in fewer_bits and "differs from the expected (120, 3)" in fewer_bits


@pytest.mark.filterwarnings("ignore:hash-grid level")
def test_a_hash_table_over_the_limit_is_refused_before_reading(tmp_path):
    meta = json.loads(json.dumps(make_code(n=4).meta))
    meta["colour"]["config"]["grid"].update(n_levels=32, log2_hashmap_size=24, n_features_per_level=8)
    with pytest.raises(SpkError, match=f"over {MAX_TABLE_PARAMS}"):
        compact_layout(meta, 4, tmp_path / "x.spk")


_PEAK = textwrap.dedent(
    """
    import json, resource, sys
    from splatpack.codecs.compact import dequantize, read_compact
    from splatpack.core.errors import SplatpackError
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        dequantize(read_compact(sys.argv[1]))
        msg = None
    except SplatpackError as e:
        msg = str(e)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"msg": msg, "peak_kb": after, "growth_kb": after - before}))
    """
)


def peak_of_refusal(path) -> dict:
    """Peak RSS (KiB) of a fresh interpreter that reads ``path``, and its growth during the read."""
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def widest_consistent_mlp(meta):
    """The largest MLP the schema's ranges allow, with matching shapes: only the byte size of the
    colour.mlp section (read from the section table, not the payload) tells it is not there."""
    cfg = meta["colour"]["config"]
    cfg.update(hidden=4096, hidden_layers=64)
    n_in = meta["colour"]["mlp_shapes"][0][1]
    dims = [n_in] + [4096] * 64 + [3]
    meta["colour"]["mlp_shapes"] = [s for a, b in pairwise(dims) for s in ([b, a], [b])]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (setter("colour.config.hidden", 30_000), "'colour.config.hidden'"),
        (setter("colour.config.hidden_layers", 100_000), "'colour.config.hidden_layers'"),
        (widest_consistent_mlp, "section 'colour.mlp' holds"),
    ],
    ids=["hidden 30000", "hidden_layers 100000", "widest consistent MLP"],
)
def test_a_colour_field_allocation_bomb_is_refused_before_anything_is_built(good, tmp_path, edit, match):
    """A header that once made the decoder build a 30000-wide or 100000-deep MLP (gigabytes) is
    refused before any tensor or module exists: the process stays small."""
    r = peak_of_refusal(forge(good, tmp_path / "bomb.spk", edit))
    assert r["msg"] is not None and match in r["msg"] and "\n" not in r["msg"], r
    assert r["peak_kb"] < 1536 * 1024, r  # the interpreter with torch loaded; the bug took gigabytes more
    assert r["growth_kb"] < 50 * 1024, r


def test_the_cli_reports_a_forged_header_in_one_line(good, tmp_path, capsys):
    from splatpack.apps.cli import main

    bad = forge(good, tmp_path / "bad.spk", setter("colour.config.hidden", 30_000))
    assert main(["decompress", str(bad), "-o", str(tmp_path / "o.ply")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "'colour.config.hidden'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.ply").exists()


ENCODER_SETTINGS = {
    "default field": {},
    "wide bits": {"codec": CompactCodecConfig(position_bits=21, opacity_bits=12, hash_bits=12)},
    "few bits": {"codec": CompactCodecConfig(position_bits=1, opacity_bits=1, hash_bits=2)},
    "small field": {
        "field_cfg": {"hidden": 8, "hidden_layers": 0, "dir_sh_degree": 0, "grid": {"n_features_per_level": 4}},
        "views": False,
    },
    "deep field": {"field_cfg": {"hidden": 16, "hidden_layers": 4, "dir_sh_degree": 1, "backend": "torch"}},
    "sh degree 3": {"sh_bases": 16},
    "sh degree 0": {"sh_bases": 1, "views": False},
}


@pytest.mark.parametrize("setting", list(ENCODER_SETTINGS))
def test_every_file_the_encoder_writes_decodes(tmp_path, setting):
    code = make_code(**ENCODER_SETTINGS[setting])
    write_compact(tmp_path / "s.spk", code)
    back = read_compact(tmp_path / "s.spk")
    for f in ("morton", "opacity_q", "scale_idx", "rot_idx", "scale_books", "rot_books", "hash_q", "sh", "views"):
        a, b = getattr(code, f), getattr(back, f)
        assert (a is None and b is None) or np.array_equal(a, b), f
    assert (code.mlp is None and back.mlp is None) or all(np.array_equal(a, b) for a, b in zip(code.mlp, back.mlp))
    scene = dequantize(back)
    assert len(scene) == code.num_gaussians and torch.equal(scene.means, dequantize(code).means)
