"""The PLY container (:mod:`splatpack.formats.ply_header`) under the INRIA reader: every element is
checked against the file size before anything is read (a forged ``face`` count in a small file is
refused with little memory), only ``vertex`` is read, headers longer than 4 KiB parse, and forged
counts, odd property names and odd layouts are one-line errors naming the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from format_scenes import FUZZ, random_set
from hypothesis import given
from hypothesis import strategies as st
from plyfile import PlyData, PlyElement

from splatpack.core import SplatpackError
from splatpack.formats import load_scene
from splatpack.formats.ply import gaussians_to_array, load_ply, save_ply
from splatpack.formats.ply_header import MAX_HEADER, parse_ply_header

FIELDS = ("means", "quats", "scales", "opacities", "sh0", "shN")
FACE = b"element face 1000000000\nproperty list uchar int vertex_indices\n"


def same(a, b) -> bool:
    return all(torch.equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


def with_header_lines(data: bytes, lines: bytes, before: bytes = b"end_header\n") -> bytes:
    """``data`` (a PLY) with ``lines`` put into its header before the line ``before``."""
    at = data.index(before)
    return data[:at] + lines + data[at:]


def refused(path: Path, match: str) -> str:
    with pytest.raises(SplatpackError, match=match) as err:
        load_scene(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


@pytest.fixture(scope="module")
def ply_bytes(tmp_path_factory) -> bytes:
    return save_ply(random_set(40, degree=1, seed=3), tmp_path_factory.mktemp("ply") / "a.ply").read_bytes()


# ---- sizes: every element, before anything is read ------------------------------------------------
CHILD = """
import json, resource, sys, time
from splatpack.core import SplatpackError
from splatpack.formats import load_scene
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    load_scene(sys.argv[1])
    message = None
except SplatpackError as e:
    message = str(e)
seconds = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"message": message, "seconds": seconds, "grew_kib": after - before}))
"""


def test_face_count_bomb_is_refused_before_allocation(ply_bytes, tmp_path):
    """A 7 KB PLY claiming a billion faces with a list property: refused by its size, in a fresh
    process whose peak resident memory grows by less than 32 MiB."""
    path = tmp_path / "bomb.ply"
    path.write_bytes(with_header_lines(ply_bytes, FACE))
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["message"] is not None and "1000000000 'face' elements" in result["message"]
    assert result["message"].startswith(f"{path}: ") and "\n" not in result["message"]
    assert result["grew_kib"] < 32 << 10, result  # refused before reading: no growth (the old reader took GBs)


def test_elements_other_than_vertex_are_not_read(ply_bytes, tmp_path):
    """Faces after the vertices that the file does hold are skipped; so is a fixed-size element
    before them (by its size); a list element before them is a clear error."""
    cut = ply_bytes.index(b"end_header\n") + len(b"end_header\n")
    header, body = ply_bytes[:cut], ply_bytes[cut:]
    gs = load_ply_bytes(ply_bytes, tmp_path / "plain.ply")
    face = FACE.replace(b"1000000000", b"5")
    faces = b"".join(bytes([3]) + np.array([0, 1, 2], "<i4").tobytes() for _ in range(5))
    assert same(load_ply_bytes(with_header_lines(header, face) + body + faces, tmp_path / "faces.ply"), gs)

    camera = b"element camera 2\nproperty double fx\nproperty uchar id\n"
    rows = np.ones(2, [("fx", "<f8"), ("id", "u1")]).tobytes()
    data = with_header_lines(header, camera, b"element vertex") + rows + body
    assert same(load_ply_bytes(data, tmp_path / "camera.ply"), gs)

    (tmp_path / "lists_first.ply").write_bytes(with_header_lines(header, face, b"element vertex") + faces + body)
    refused(tmp_path / "lists_first.ply", "'face' with list properties comes before 'vertex'")


def load_ply_bytes(data: bytes, path: Path):
    path.write_bytes(data)
    return load_ply(path)


@pytest.mark.parametrize("digits", [20, 5000])
def test_huge_counts_are_one_clean_error(ply_bytes, tmp_path, digits):
    for name, data in {
        "vertex": ply_bytes.replace(b"element vertex 40", b"element vertex " + b"9" * digits),
        "face": with_header_lines(ply_bytes, FACE.replace(b"1000000000", b"7" * digits)),
    }.items():
        path = tmp_path / f"{name}.ply"
        path.write_bytes(data)
        refused(path, f"element '{name}' has a count of {digits} digits")


def test_counts_larger_than_the_file_are_refused(ply_bytes, tmp_path):
    path = tmp_path / "big.ply"
    path.write_bytes(ply_bytes.replace(b"element vertex 40", b"element vertex 41"))
    refused(path, r"header claims 41 vertices .* \(truncated\?\)")
    path.write_bytes(with_header_lines(ply_bytes, b"element face 5\nproperty list uchar int vertex_indices\n"))
    refused(path, "header claims 5 'face' elements")


# ---- the header: long, odd, not a header ------------------------------------------------------------
def test_a_header_longer_than_4_kib_parses(ply_bytes, tmp_path):
    comments = b"".join(b"comment line %d of a long provenance note\n" % i for i in range(300))
    long = ply_bytes.replace(b"ply\n", b"ply\n" + comments, 1)
    assert long.index(b"end_header") > 8192
    gs = load_ply_bytes(ply_bytes, tmp_path / "short.ply")
    path = tmp_path / "long.ply"
    path.write_bytes(long)
    assert same(load_scene(path), gs)


def test_a_header_past_the_limit_is_refused(ply_bytes, tmp_path):
    path = tmp_path / "huge.ply"
    path.write_bytes(ply_bytes.replace(b"ply\n", b"ply\n" + b"comment x\n" * (MAX_HEADER // 10 + 1), 1))
    refused(path, "no end_header in the first 64 KiB")


def test_end_header_inside_a_comment_does_not_end_the_header(ply_bytes, tmp_path):
    data = ply_bytes.replace(b"ply\n", b"ply\ncomment end_header\n", 1)
    assert same(load_ply_bytes(data, tmp_path / "c.ply"), load_ply_bytes(ply_bytes, tmp_path / "p.ply"))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ((b"format binary_little_endian 1.0", b"format binary_little_endian 2.0"), "unsupported PLY format"),
        ((b"format binary_little_endian 1.0\n", b""), "no format line"),
        ((b"property float x", b"property float y"), "repeats a property"),
        ((b"property float x", b"property quad x"), "unsupported PLY header line"),
        ((b"element vertex 40", b"element vertex -40"), "not a whole number"),
        ((b"comment", b"comment"), None),
    ],
)
def test_malformed_headers(ply_bytes, tmp_path, edit, match):
    data = ply_bytes.replace(*edit, 1)
    if match is None:
        data = ply_bytes.replace(b"ply\n", "ply\ncomment caf\u00e9\n".encode(), 1)
        match = "not ASCII"
    path = tmp_path / "bad.ply"
    path.write_bytes(data)
    refused(path, match)


def test_the_header_length_and_elements():
    head = b"ply\r\nformat ascii 1.0\r\nelement vertex 2\r\nproperty float x\r\nelement face 1\r\n"
    head += b"property list uchar int vertex_indices\r\nend_header\r\n"
    header = parse_ply_header(head + b"1\n2\n3 0 1 1\n", "t.ply")
    assert header.length == len(head) and header.ascii
    assert [(e.name, e.count, e.fixed_size) for e in header.elements] == [("vertex", 2, True), ("face", 1, False)]


# ---- the vertex properties ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (b"f_rest_8", b"f_rest_abc", "'f_rest_abc' breaks the sequence f_rest_0..f_rest_8"),
        (b"f_rest_8", b"f_rest_", "'f_rest_' breaks the sequence"),
        (b"f_rest_3", b"f_rest_03", "'f_rest_03' breaks the sequence"),
        (b"f_rest_8", b"f_rest_9", "'f_rest_9' breaks the sequence"),
        (b"property float f_rest_8\n", b"", "unexpected number of f_rest properties: 8"),
        (b"property float rot_3\n", b"", "missing properties rot_3"),
    ],
)
def test_vertex_properties_are_checked_from_the_header(ply_bytes, tmp_path, old, new, match):
    path = tmp_path / "odd.ply"
    path.write_bytes(ply_bytes.replace(old, new, 1))
    refused(path, match)


def test_inria_layout_is_read_whatever_the_encoding(tmp_path):
    """A big-endian and an ASCII PLY of the same Gaussians (written by plyfile) read the same."""
    gs = random_set(30, degree=3, seed=5)
    el = PlyElement.describe(gaussians_to_array(gs), "vertex")
    for name, kw in {"be": {"byte_order": ">"}, "ascii": {"text": True}}.items():
        PlyData([el], **kw).write(str(tmp_path / f"{name}.ply"))
        assert same(load_scene(tmp_path / f"{name}.ply"), gs), name


def test_truncated_ascii_rows_are_refused(tmp_path):
    gs = random_set(30, degree=0, seed=5)
    PlyData([PlyElement.describe(gaussians_to_array(gs), "vertex")], text=True).write(str(tmp_path / "a.ply"))
    data = (tmp_path / "a.ply").read_bytes()
    lines = data.split(b"\n")
    (tmp_path / "cut.ply").write_bytes(b"\n".join(lines[:-6]) + b"\n")
    refused(tmp_path / "cut.ply", "truncated")
    (tmp_path / "short_row.ply").write_bytes(b"\n".join(lines[:-3] + [b"1 2 3"] + lines[-2:]))
    refused(tmp_path / "short_row.ply", "malformed row")


# ---- never a traceback ------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_header_byte_flips_and_cuts_never_crash(ply_bytes, tmp_path, data):
    """Flips inside the header (where every count and name is) and cuts anywhere: a result with
    finite positions, or one clean error."""
    end = ply_bytes.index(b"end_header") + 11
    flips = data.draw(st.lists(st.tuples(st.integers(0, end - 1), st.integers(1, 255)), min_size=1, max_size=6))
    mutated = bytearray(ply_bytes)
    for offset, xor in flips:
        mutated[offset] ^= xor
    cut = data.draw(st.integers(0, len(mutated)))
    path = tmp_path / "fuzz.ply"
    path.write_bytes(bytes(mutated[:cut]))
    try:
        gs = load_scene(path)
    except SplatpackError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert torch.isfinite(gs.means).all()
