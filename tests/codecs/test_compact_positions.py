"""Positions of a compact scene (splatpack.codecs.compact.positions): Morton codes, delta bytes,
the quantisation grid."""

from __future__ import annotations

import numpy as np
import pytest

from splatpack.codecs.compact.positions import (
    delta_bytes,
    dequantize_positions,
    morton_decode,
    morton_encode,
    position_bytes,
    quantize_positions,
    undelta_bytes,
)


def test_morton_round_trip_and_delta_bytes():
    rng = np.random.default_rng(0)
    for bits in (1, 10, 16, 21):
        q = rng.integers(0, 1 << bits, size=(5000, 3)).astype(np.uint64)
        codes = morton_encode(q)
        assert np.array_equal(morton_decode(codes).astype(np.uint64), q)
        s = np.sort(codes)
        nb = (3 * bits + 7) // 8
        assert np.array_equal(undelta_bytes(delta_bytes(s, nb)), s)
    # locality: Morton order of a 2×2×2 block is consecutive
    block = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], np.uint64)
    assert morton_encode(block).tolist() == list(range(8))


def test_position_grid_round_trips_within_half_a_step():
    rng = np.random.default_rng(1)
    means = rng.normal(size=(2000, 3)) * [1.0, 5.0, 0.1]
    bits = 12
    q, lo, hi = quantize_positions(means, bits)
    assert q.dtype == np.uint64 and int(q.max()) <= (1 << bits) - 1 and position_bytes(bits) == 5
    back = dequantize_positions(morton_encode(q), {"bits": bits, "lo": lo.tolist(), "hi": hi.tolist()})
    step = (hi - lo) / ((1 << bits) - 1)
    assert back.dtype == np.float32 and np.all(np.abs(back - means) <= 0.5 * step + 1e-5)


@pytest.mark.parametrize("bits", [0, 22])
def test_position_bits_out_of_range_are_refused(bits):
    with pytest.raises(ValueError, match=r"position_bits must be in 1\.\.21"):
        quantize_positions(np.zeros((4, 3)), bits)
