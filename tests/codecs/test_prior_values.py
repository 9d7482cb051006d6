"""Mode b with a value model (:mod:`splatpack.codecs.prior.values`): the layout's images come back
exactly as the grid codec's sections; a section the model codes no smaller than the grid codec
falls back to it; and the shipped ``values-v1`` codes a held-out object of objects10k smaller
than the grid codec's best lossless coding."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from grid_scenes import one_numba_thread
from prior_models import one_torch_thread, tiny_model

from splatpack.codecs.grid import encode_grid_scene
from splatpack.codecs.prior.modelfile import LoadedCodingModel, load_coding_model, shipped_model_path
from splatpack.codecs.prior.planes import DEFAULT_LAYOUT, grid_images, own_coding, section_image
from splatpack.codecs.prior.training import grid_config
from splatpack.codecs.prior.values import VALUES_SECTION, decode_values_mode, encode_values_mode, section_channels
from splatpack.core.errors import SplatpackError
from splatpack.formats import load_scene
from splatpack.generative.valuemodel import coding_copy

OBJECTS = Path(__file__).resolve().parents[3] / "shared" / "splats" / "objects10k"


@pytest.fixture(autouse=True)
def _threads():
    with one_torch_thread():
        yield


def _loaded(model) -> LoadedCodingModel:
    return LoadedCodingModel(coding_copy(model), DEFAULT_LAYOUT, {}, "tiny-v1", "0" * 64, 1, "values")


@pytest.fixture(scope="module")
def coded(scene, grid):
    with one_numba_thread():
        return encode_grid_scene(scene, grid_config(), grid)


def _round_trip(sections, meta, loaded):
    out, meta2, entry, stats = encode_values_mode(sections, meta, loaded)
    by_name = {s.name: s for s in out}
    decoded = decode_values_mode(by_name.__getitem__, meta2, entry, loaded)
    h, w = meta["grid"]["height"], meta["grid"]["width"]
    images = grid_images(sections, meta, DEFAULT_LAYOUT)
    first = {ch.section: ch for ch in DEFAULT_LAYOUT}
    for name, sec in decoded.items():
        ch = first[name]
        assert np.array_equal(section_image(sec, ch.stored_bits, ch.channels, h, w), images[name]), name
    assert set(decoded) | set(entry["fallback"]) == set(first)
    return out, entry, stats


def test_values_mode_gives_back_the_grid_codecs_images(coded):
    sections, meta = coded
    _, entry, stats = _round_trip(sections, meta, _loaded(tiny_model(0, "values")))
    assert entry["mode"] == "values" and stats.passes >= 1


def test_a_section_the_model_codes_no_smaller_falls_back(coded):
    sections, meta = coded
    loaded = _loaded(tiny_model(0, "values"))
    out, entry, stats = _round_trip(sections, meta, loaded)
    images = grid_images(sections, meta, DEFAULT_LAYOUT)
    own = own_coding(sections, images, DEFAULT_LAYOUT)
    units = section_channels(DEFAULT_LAYOUT)
    for u in units:  # the first pass's verdict: fallback where the model is no smaller
        model_bytes = math.ceil(stats.model_only_section_bits[u] / 8)
        if model_bytes >= len(own[u].payload):
            assert u in entry["fallback"]
    assert stats.fallback_bytes == sum(len(own[u].payload) for u in entry["fallback"])
    assert {s.name for s in out} >= {*entry["fallback"], VALUES_SECTION}


def test_a_fallback_list_naming_no_section_is_refused(coded):
    sections, meta = coded
    loaded = _loaded(tiny_model(0, "values"))
    out, meta2, entry, _ = encode_values_mode(sections, meta, loaded)
    by_name = {s.name: s for s in out}
    with pytest.raises(SplatpackError, match="fallback"):
        decode_values_mode(by_name.__getitem__, meta2, {**entry, "fallback": ["grid.bogus"]}, loaded)


@pytest.mark.skipif(not OBJECTS.is_dir(), reason="needs ../shared/splats/objects10k")
def test_the_shipped_value_model_beats_the_grid_codec_on_a_held_out_object():
    loaded = load_coding_model(shipped_model_path("values-v1"))
    assert "fish" in loaded.card["held_out"]
    with one_numba_thread():
        sections, meta = encode_grid_scene(load_scene(OBJECTS / "fish.splat"), grid_config())
    images = grid_images(sections, meta, DEFAULT_LAYOUT)
    best = sum(len(s.payload) for s in own_coding(sections, images, DEFAULT_LAYOUT).values())
    _, _, stats = _round_trip(sections, meta, loaded)
    ours = stats.stream_bytes + stats.fallback_bytes
    assert ours < 0.92 * best
    assert stats.stream_bytes <= stats.cross_entropy_bits / 8 * 1.01 + 16
