"""Coding binary planes under a bit model (:mod:`splatpack.generative.entropy`): exact round
trips, coded size close to the cross-entropy, the order-0 fallback where the model is worse,
units left to another coder, and corrupt streams refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from prior_models import one_torch_thread

from splatpack.core.errors import SplatpackError
from splatpack.generative.bitmodel import BitModel, BitModelConfig, coding_copy
from splatpack.generative.entropy import (
    bernoulli_bits,
    choose_fallback,
    decode_planes,
    encode_planes,
    static_probability,
)


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


def copying_model() -> BitModel:
    """Planes (rank 0, rank 1): p(plane 0) = ½; plane 1 predicted to equal plane 0 at its cell."""
    model = BitModel(BitModelConfig(ranks=(0, 1), hidden=4, blocks=1))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.stem.weight[0, 0, 0, 0] = 1.0  # hidden 0 = plane 0's bit as ±1 (0 while unknown)
        model.head.weight[1, 0] = 20.0  # gelu(1) = 0.84, gelu(−1) = −0.16
        model.head.bias[1] = -7.0
    return coding_copy(model)


def random_model(planes: int, seed: int = 0) -> BitModel:
    torch.manual_seed(seed)
    return coding_copy(BitModel(BitModelConfig(ranks=tuple(range(planes)), hidden=8, blocks=2)))


def test_round_trip_random_bits_with_an_untrained_model():
    rng = np.random.default_rng(0)
    bits = (rng.random((4, 9, 11)) < [[[0.5]], [[0.1]], [[0.7]], [[0.5]]]).astype(np.uint8)
    model = random_model(4)
    coded = encode_planes(model, bits)
    out = decode_planes(model, coded.words, 9, 11, static=coded.static)
    assert np.array_equal(out, bits)


def test_round_trip_with_known_planes_and_size_close_to_cross_entropy():
    rng = np.random.default_rng(1)
    b0 = (rng.random((96, 96)) < 0.95).astype(np.uint8)
    bits = np.stack([b0, b0])
    model = copying_model()
    coded = encode_planes(model, bits)
    assert coded.static == {0: static_probability(b0)}  # the model's ½ is worse than p̂ = 0.95
    assert 1 not in coded.static and coded.model_bits[1] < 0.01 * b0.size  # the copy is nearly free
    assert np.array_equal(decode_planes(model, coded.words, 96, 96, static=coded.static), bits)
    assert coded.coded_bits == pytest.approx(bernoulli_bits(b0, static_probability(b0)) + coded.model_bits[1])
    assert abs(len(coded.words) - coded.coded_bits / 8) <= 0.01 * coded.coded_bits / 8 + 8
    # plane 0 known to the decoder: only plane 1 is in the stream
    known = np.array([True, False])
    coded1 = encode_planes(model, bits, known)
    assert len(coded1.words) < 0.1 * len(coded.words)
    given = np.zeros_like(bits)
    given[0] = b0
    assert np.array_equal(decode_planes(model, coded1.words, 96, 96, given, known, coded1.static), bits)


def test_model_is_kept_where_it_beats_order_zero():
    rng = np.random.default_rng(2)
    b0 = (rng.random((64, 64)) < 0.5).astype(np.uint8)
    coded = encode_planes(copying_model(), np.stack([b0, b0]))
    assert coded.static == {}  # ½ for a fair coin is as good as p̂, and p̂ costs a table entry
    assert coded.model_bits[0] == pytest.approx(b0.size)


def test_fallback_units_are_those_the_model_codes_no_smaller():
    model_bits = np.array([800.0, 800.0, 80.0, 8000.0])
    units = {"a": [0, 1], "b": [2], "c": [3]}
    assert choose_fallback(model_bits, units, {"a": 250, "b": 100, "c": 1000}) == ["c"]  # 200, 10, 1000 bytes
    assert choose_fallback(model_bits, units, {"a": 150, "b": 5, "c": 1001}) == ["a", "b"]


def test_corrupt_or_truncated_streams_are_refused():
    rng = np.random.default_rng(3)
    bits = (rng.random((4, 16, 16)) < 0.5).astype(np.uint8)
    model = random_model(4, seed=1)
    coded = encode_planes(model, bits)
    with pytest.raises(SplatpackError):
        decode_planes(model, coded.words[:-3], 16, 16, static=coded.static)
    failed = 0
    for cut in (4, 8, len(coded.words) // 2):
        try:
            out = decode_planes(model, coded.words[:-cut], 16, 16, static=coded.static)
        except SplatpackError:
            failed += 1
        else:
            assert not np.array_equal(out, bits)
    assert failed >= 1
    with pytest.raises(SplatpackError, match="static"):
        decode_planes(model, coded.words, 16, 16, static={9: 100})
