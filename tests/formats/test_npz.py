"""The ``.npz`` format (:mod:`splatpack.formats.npz`): round trip, and bad files are one-line errors."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from splatpack.core import GaussianSet, SplatpackError
from splatpack.formats import detect_format, load_scene, save_scene


def scene(n: int = 40, degree: int = 2) -> GaussianSet:
    return GaussianSet.random_in_box(n, np.full(3, -1.0), np.full(3, 1.0), degree, 0)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    gs = scene()
    path = save_scene(gs, tmp_path / "g.npz")
    back = load_scene(path)
    assert detect_format(path).name == "npz" and back.sh_degree == 2
    for k in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        assert np.array_equal(getattr(back, k).numpy(), getattr(gs, k).numpy())


def _npz(tmp_path: Path, **arrays) -> Path:
    path = tmp_path / "x.npz"
    np.savez(path, **arrays)
    return path


def test_object_arrays_are_refused_not_unpickled(tmp_path: Path) -> None:
    gs = {k: getattr(scene(), k).numpy() for k in ("means", "quats", "scales", "opacities", "sh0", "shN")}
    gs["means"] = np.array([object()] * 40, dtype=object)
    with pytest.raises(SplatpackError, match="not floating point"):
        load_scene(_npz(tmp_path, **gs))


def test_missing_array_and_bad_shapes(tmp_path: Path) -> None:
    g = {k: getattr(scene(), k).numpy() for k in ("means", "quats", "scales", "opacities", "sh0", "shN")}
    with pytest.raises(SplatpackError, match="no array 'shN'"):
        load_scene(_npz(tmp_path, **{k: v for k, v in g.items() if k != "shN"}))
    with pytest.raises(SplatpackError, match="do not describe"):
        load_scene(_npz(tmp_path, **{**g, "quats": g["quats"][:10]}))


def test_a_forged_shape_is_refused_before_allocation(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 3)})
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("means.npy", buf.getvalue() + b"\0" * 64)
    with pytest.raises(SplatpackError, match="more than the file holds"):
        load_scene(path)


def _npz_with_member(path: Path, npy: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("means.npy", npy)
    return path


def test_an_array_shorter_than_its_header_is_refused(tmp_path: Path) -> None:
    """Found by benchmarks/fuzz_readers.py: the stream ended before the shape the header gives
    (numpy's 'buffer is smaller than requested size' traceback)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros((4, 3), np.float32))
    npy = buf.getvalue()[:-28]  # 20 of the 48 data bytes
    with pytest.raises(SplatpackError, match="truncated"):
        load_scene(_npz_with_member(tmp_path / "t.npz", npy))


def test_a_header_numpy_cannot_tokenize_is_refused(tmp_path: Path) -> None:
    """Found by benchmarks/fuzz_readers.py: an unterminated header dict raised tokenize's TokenError."""
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3"
    npy = b"\x93NUMPY\x01\x00" + len(header + b"\n").to_bytes(2, "little") + header + b"\n" + bytes(48)
    with pytest.raises(SplatpackError, match="bad header"):
        load_scene(_npz_with_member(tmp_path / "h.npz", npy))


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    """Found by benchmarks/fuzz_readers.py: zipfile's RuntimeError ('password required')."""
    path = save_scene(GaussianSet.random_in_box(20, np.full(3, -1.0), np.ones(3)), tmp_path / "a.npz")
    b = bytearray(path.read_bytes())
    i = b.find(b"PK\x01\x02")
    b[i + 8] |= 1  # general-purpose flag bit 0: encrypted
    path.write_bytes(bytes(b))
    with pytest.raises(SplatpackError, match="not a readable"):
        load_scene(path)
