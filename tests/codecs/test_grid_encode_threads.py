"""The grid encoder codes its attribute planes on a thread per core
(:func:`splatpack.codecs.grid.encode.code_attributes`): the same sections, in the same order,
as coding them one after another, so a file's bytes do not depend on the cores."""

from __future__ import annotations

import pytest
from grid_scenes import one_numba_thread

import splatpack.codecs.grid.encode as encode
from splatpack.codecs.grid import GridCodecConfig, encode_grid_scene
from splatpack.codecs.grid.layout import GridCells
from splatpack.codecs.grid.values import coded_values
from splatpack.core import SplatpackError


@pytest.mark.parametrize("quality", [0, 6, "sog"])
def test_threads_give_the_bytes_of_one_thread(scene, grid, quality, monkeypatch):
    cfg = GridCodecConfig.from_quality(quality)
    files = []
    for cores in (1, 4):
        monkeypatch.setattr(encode.os, "cpu_count", lambda c=cores: c)
        with one_numba_thread():
            sections, meta = encode_grid_scene(scene, cfg, grid)
        files.append(([(s.name, s.codec, bytes(s.payload)) for s in sections], meta))
    assert files[0] == files[1]


def test_code_attributes_keeps_the_order_of_its_jobs(scene, grid, monkeypatch):
    monkeypatch.setattr(encode.os, "cpu_count", lambda: 3)
    cfg = GridCodecConfig.from_quality(6)
    values = coded_values(scene, cfg)
    jobs = [(name, values[name]) for name in ("opacities", "means", "sh0", "means")]
    cells = GridCells.of(grid)
    out = encode.code_attributes(jobs, cells, cfg)
    assert [secs[0].name for secs, _ in out] == ["grid.opacities", "grid.means", "grid.sh0", "grid.means"]
    assert out[1] == out[3] == encode.code_attribute("means", values["means"], cells, cfg)


def test_an_error_in_one_plane_is_raised_as_it_is(scene, grid, monkeypatch):
    monkeypatch.setattr(encode.os, "cpu_count", lambda: 2)
    cfg = GridCodecConfig.from_quality(6)
    values = coded_values(scene, cfg)

    def refuse(name, *args, **kwargs):
        raise SplatpackError(f"cannot code '{name}'")

    monkeypatch.setattr(encode, "code_attribute", refuse)
    with pytest.raises(SplatpackError, match="cannot code 'means'"):
        encode.code_attributes([(n, values[n]) for n in ("means", "sh0")], GridCells.of(grid), cfg)
