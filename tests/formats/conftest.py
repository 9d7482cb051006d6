"""Fixtures of the scene-format tests: ``samples``, one small valid file of each format."""

from __future__ import annotations

import pytest
from format_scenes import gsply_data, random_set

from splatpack.formats.sog import save_sog
from splatpack.formats.splat import save_splat
from splatpack.formats.spz import save_spz


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, tuple[bytes, str]]:
    """Small valid files of each format: name → (bytes, file suffix)."""
    gsply = pytest.importorskip("gsply")
    d = tmp_path_factory.mktemp("valid")
    gs = random_set(40, degree=1, seed=21)
    out = {
        "splat": (save_splat(gs, d / "a.splat").read_bytes(), ".splat"),
        "spz3": (save_spz(gs, d / "a3.spz", version=3).read_bytes(), ".spz"),
        "spz4": (save_spz(gs, d / "a4.spz", version=4).read_bytes(), ".spz"),
        "sog": (save_sog(gs, d / "a.sog").read_bytes(), ".sog"),
    }
    big = random_set(300, degree=1, seed=22)
    gsply.plywrite(d / "c.compressed.ply", gsply_data(big), compressed=True)
    out["cply"] = ((d / "c.compressed.ply").read_bytes(), ".compressed.ply")
    return out
