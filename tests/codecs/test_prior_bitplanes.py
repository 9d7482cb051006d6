"""Mode b of the learned coding (:mod:`splatpack.codecs.prior`): bit-planes of the grid codec's
own quantised images, a model file that refuses damage, and bit-plane coding that decodes to the
grid codec's values exactly, with per-section fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from grid_scenes import one_numba_thread
from prior_models import one_torch_thread, tiny_model

from splatpack.codecs.grid import GridCodecConfig, encode_grid_scene
from splatpack.codecs.prior.bitplanes import BITS_SECTION, decode_bitplanes, encode_bitplanes
from splatpack.codecs.prior.modelfile import DEFAULT_MODEL, load_coding_model, save_coding_model, shipped_model_path
from splatpack.codecs.prior.planes import (
    DEFAULT_LAYOUT,
    from_planes,
    grid_images,
    plane_ranks,
    plane_units,
    to_planes,
)
from splatpack.codecs.prior.training import BitTrainConfig, grid_config, train_bit_model
from splatpack.core.errors import SplatpackError
from splatpack.generative.bitmodel import BitModel, BitModelConfig, coding_copy
from splatpack.generative.entropy import (
    STATIC_COST_BITS,
    bernoulli_bits,
    decode_planes,
    encode_planes,
    static_probability,
)
from splatpack.spk.arrays import decode_array, encode_array


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def coded(scene, grid):
    with one_numba_thread():
        return encode_grid_scene(scene, grid_config(), grid_index=grid)


@pytest.fixture(scope="module")
def model_path(tmp):
    path = tmp / "tiny.pt"
    save_coding_model(tiny_model(), DEFAULT_LAYOUT, {"grid_codec": "quality default"}, path)
    return path


def test_layout_planes_partition_and_round_trip():
    units = plane_units(DEFAULT_LAYOUT)
    k = sum(ch.bits for ch in DEFAULT_LAYOUT)
    assert sorted(j for planes in units.values() for j in planes) == list(range(k))
    ranks = plane_ranks(DEFAULT_LAYOUT)
    assert ranks[:13] == tuple(range(13)) and max(ranks) == 12
    rng = np.random.default_rng(0)
    images = {}
    for ch in DEFAULT_LAYOUT:
        img = images.setdefault(ch.section, np.zeros((5, 6, ch.channels), np.uint16))
        img[..., ch.channel] = rng.integers(0, 1 << ch.bits, (5, 6))
    bits = to_planes(images, DEFAULT_LAYOUT)
    assert bits.shape == (k, 5, 6) and set(np.unique(bits)) <= {0, 1}
    back = from_planes(bits, DEFAULT_LAYOUT)
    assert all(np.array_equal(back[n], images[n]) for n in images)


def test_grid_images_are_the_grid_codecs_values(scene, grid, coded):
    sections, meta = coded
    images = grid_images(sections, meta, DEFAULT_LAYOUT)
    assert set(images) == set(plane_units(DEFAULT_LAYOUT))
    assert images["grid.means"].shape == (17, 18, 3) and int(images["grid.means"].max()) == (1 << 13) - 1
    assert int(images["grid.quats"][..., 3].max()) <= 3
    with one_numba_thread():
        other = encode_grid_scene(scene, GridCodecConfig.from_quality("high"), grid_index=grid)
    assert grid_images(*other, DEFAULT_LAYOUT) is None  # 14-bit positions: not this layout
    with one_numba_thread():
        split = encode_grid_scene(scene, GridCodecConfig.from_quality("default"), grid_index=grid)
    assert grid_images(*split, DEFAULT_LAYOUT) is None  # low bits beside the image: not whole values


def test_model_file_round_trip_and_damage(tmp, model_path):
    loaded = load_coding_model(model_path)
    assert loaded.name == "tiny" and len(loaded.sha256) == 64 and loaded.layout == DEFAULT_LAYOUT
    assert loaded.model.head.weight.dtype == torch.float64 and not loaded.model.training
    payload = torch.load(model_path, weights_only=True)
    payload["state"]["head.bias"][0] += 1.0
    torch.save(payload, tmp / "damaged.pt")
    with pytest.raises(SplatpackError, match="checksum"):
        load_coding_model(tmp / "damaged.pt")
    (tmp / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(SplatpackError, match="not a coding-model"):
        load_coding_model(tmp / "junk.pt")
    with pytest.raises(SplatpackError, match="no such"):
        load_coding_model(tmp / "missing.pt")


def test_bitplanes_decode_to_the_grid_codecs_values(coded, model_path):
    sections, meta = coded
    loaded = load_coding_model(model_path)
    images = grid_images(sections, meta, DEFAULT_LAYOUT)
    out, out_meta, entry, stats = encode_bitplanes(sections, meta, loaded)
    names = {s.name for s in out}
    assert BITS_SECTION in names and "grid.empty" in names and "grid.shN" in names  # outside the layout: kept
    units = set(plane_units(DEFAULT_LAYOUT))
    assert names & units == set(entry["fallback"]) == set(stats.fallback)
    assert entry["sha256"] == loaded.sha256 and entry["version"] == loaded.version
    for s in out:  # each fallback section is coded as its meta says
        if s.name in units:
            assert out_meta["attributes"][s.name.split(".")[1]]["codec"] == s.codec
    by_name = {s.name: s for s in out}
    decoded = decode_bitplanes(by_name.__getitem__, out_meta, entry, loaded)
    assert set(decoded) == units - set(entry["fallback"])
    for name, sec in decoded.items():
        assert np.array_equal(decode_array(sec.payload, "ans").reshape(images[name].shape), images[name])


def test_sections_the_model_codes_no_smaller_fall_back(coded, model_path):
    sections, meta = coded
    loaded = load_coding_model(model_path)
    images = grid_images(sections, meta, DEFAULT_LAYOUT)
    bits = to_planes(images, DEFAULT_LAYOUT)
    first = encode_planes(loaded.model, bits)
    # per plane the coder pays the smaller of the model and the order-0 code (+ its table entry)
    costs = np.minimum(first.model_bits, [bernoulli_bits(b, static_probability(b)) + STATIC_COST_BITS for b in bits])
    # the grid codec's own coding: its payload, or order-0 ans of the same image where smaller
    stored = {ch.section: ch.stored_bits for ch in DEFAULT_LAYOUT}
    payload = {
        s.name: min(
            len(s.payload),
            len(
                encode_array(
                    images[s.name].reshape(17 * 18, -1).astype(np.uint8 if stored[s.name] <= 8 else np.uint16), "ans"
                )
            ),
        )
        for s in sections
        if s.name in images
    }
    expected = [
        u for u, planes in plane_units(DEFAULT_LAYOUT).items() if np.ceil(costs[planes].sum() / 8) >= payload[u]
    ]
    _, _, entry, stats = encode_bitplanes(sections, meta, loaded)
    assert entry["fallback"] == expected and expected  # an untrained model loses somewhere
    assert stats.passes == 2 and stats.fallback_bytes == sum(payload[u] for u in expected)
    assert (
        stats.stream_bytes
        < sum(np.ceil(costs[p].sum() / 8) for u, p in plane_units(DEFAULT_LAYOUT).items() if u not in expected) + 16
    )


def test_training_on_grids_lowers_the_coded_bits():
    # plane 1 copies plane 0 at every cell: training on crops teaches the model the copy
    rng = np.random.default_rng(0)
    grids = [np.repeat(rng.integers(0, 2, (1, 20, 22), dtype=np.uint8), 2, 0) for _ in range(3)]
    torch.manual_seed(0)
    model = BitModel(BitModelConfig(ranks=(0, 1), hidden=8, blocks=1))
    losses = train_bit_model(model, grids, BitTrainConfig(steps=40, batch=4, crop=12, lr=2e-2))
    assert len(losses) == 40 and not model.training
    loaded = coding_copy(model)
    assert encode_planes(loaded, grids[0]).model_bits[1] < 0.3 * grids[0][1].size


@pytest.mark.parametrize("name", ["bitplanes-v1", DEFAULT_MODEL])
def test_the_shipped_models_load_with_their_cards(name):
    loaded = load_coding_model(shipped_model_path(name))
    assert loaded.name == name and loaded.layout == DEFAULT_LAYOUT
    assert loaded.mode == ("bitplanes" if name.startswith("bitplanes") else "values")
    assert len(loaded.card["held_out"]) == 6 and "LICENSES" in loaded.card["licences"]
    assert shipped_model_path(name).stat().st_size < 5 << 20


def test_the_shipped_bitplane_model_codes_a_scene_losslessly(coded):
    sections, meta = coded
    loaded = load_coding_model(shipped_model_path("bitplanes-v1"))
    images = grid_images(sections, meta, DEFAULT_LAYOUT)
    bits = to_planes(images, DEFAULT_LAYOUT)
    stream = encode_planes(loaded.model, bits)
    assert np.array_equal(decode_planes(loaded.model, stream.words, 17, 18, static=stream.static), bits)
    assert len(stream.words) <= stream.coded_bits / 8 * 1.01 + 8
