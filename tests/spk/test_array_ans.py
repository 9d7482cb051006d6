"""The ``ans`` array codec (:mod:`splatpack.spk.arrays.ans`): round trips, efficiency, a reference
decoder, decode errors, fuzzing.

Hypothesis cases in this file (``max_examples``): round trips 100, mutated payloads 130 = 230.
"""

from __future__ import annotations

import bisect
import math
import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spk_payloads import FUZZ, ans_payload, decode_cleanly, mutated, same

from splatpack.spk.arrays import ANS_DTYPES, DTYPE_CODES, CodecError, decode_array, encode_array


@st.composite
def ans_arrays(draw):
    dtype = draw(st.sampled_from(sorted(ANS_DTYPES, key=str)))
    info = np.iinfo(dtype)
    n = draw(st.integers(0, 200))
    k = draw(st.sampled_from([None, 1, 3, 8]))
    lo = draw(st.integers(int(info.min), int(info.max)))
    span = draw(st.sampled_from([1, 2, 5, 256, 3000, 1 << 16]))
    hi = min(int(info.max), lo + span - 1)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (n,) if k is None else (n, k)
    values = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    if draw(st.booleans()):  # skewed: most mass on a few symbols
        values = np.where(rng.random(shape) < 0.9, lo, values)
    return values.astype(dtype)


@settings(FUZZ, max_examples=100)
@given(arr=ans_arrays())
def test_ans_round_trip(arr):
    payload = encode_array(arr, "ans")
    assert same(decode_array(payload, "ans"), arr)
    assert same(ref_decode_ans(payload), arr) if arr.size <= 300 else True


def test_ans_edge_cases():
    cases = [
        np.zeros(0, np.uint8),
        np.zeros((0, 5), np.int16),
        np.zeros((7, 0), np.int32),
        np.array([42], np.int8),
        np.array([-128, 127], np.int8),
        np.array([0, 2**32 - 1 - 65535, 2**32 - 1], np.uint32)[1:],  # span exactly 2**16
        np.array([-(2**31), -(2**31) + 1], np.int32),
        np.tile(np.array([[1, 2, 3]], np.uint16), (50, 1)),  # all-constant columns: no words
    ]
    for arr in cases:
        payload = encode_array(arr, "ans")
        assert same(decode_array(payload, "ans"), arr), arr
        assert same(ref_decode_ans(payload), arr), arr


def test_constant_columns_cost_nothing():
    rng = np.random.default_rng(3)
    planes = np.zeros((100_000, 8), np.uint8)  # e.g. byte planes of small uint64 deltas
    planes[:, 0] = rng.integers(0, 2, planes.shape[0])
    planes[:, 1:] = 7
    payload = encode_array(planes, "ans")
    # header 24 + column models ~30 + 1 bit per row for column 0
    assert len(payload) < 100_000 / 8 * 1.001 + 64, len(payload)
    assert same(decode_array(payload, "ans"), planes)
    assert len(encode_array(np.full((10**6, 6), 5, np.int32), "ans")) < 48


def test_ans_rejects_what_it_cannot_code():
    with pytest.raises(CodecError, match="supports u8, i8, u16, i16, u32 and i32"):
        encode_array(np.zeros(3, np.float32), "ans")
    with pytest.raises(CodecError, match="supports u8, i8, u16, i16, u32 and i32"):
        encode_array(np.zeros(3, np.int64), "ans")
    with pytest.raises(CodecError, match="1-D or 2-D"):
        encode_array(np.zeros((2, 2, 2), np.uint8), "ans")
    with pytest.raises(CodecError, match=r"column 1 spans 65537 values .*use raw or deflate"):
        encode_array(np.array([[0, 0], [1, 65536]], np.int32), "ans")


def test_ans_within_0p1_percent_of_entropy(capsys):
    n = 1_000_000
    rng = np.random.default_rng(0)
    p = 0.97 ** np.arange(256)
    x = rng.choice(256, size=n, p=p / p.sum()).astype(np.uint8)
    t0 = time.perf_counter()
    payload = encode_array(x, "ans")
    t1 = time.perf_counter()
    y = decode_array(payload, "ans")
    t2 = time.perf_counter()
    assert same(x, y)
    counts = np.bincount(x, minlength=256)
    q = counts[counts > 0] / n
    entropy_bytes = n * float(-(q * np.log2(q)).sum()) / 8
    coded = 4 * len(_parse_ans(payload)[-1])  # the compressed words
    header = len(payload) - coded  # array header + model (counts as varints) + word count
    assert header < 8 + 8 + 1 + 2 + 256 * 3 + 4 + 4
    assert coded <= entropy_bytes * 1.001, (coded, entropy_bytes)
    assert len(payload) <= entropy_bytes * 1.001 + header
    with capsys.disabled():
        print(
            f"\nans: {n} symbols, H={8 * entropy_bytes / n:.4f} bits, coded {coded} B vs "
            f"N*H {entropy_bytes:.0f} B (+{100 * (coded / entropy_bytes - 1):.4f} %), model header "
            f"{header} B; encode {1e3 * (t1 - t0):.0f} ms, decode {1e3 * (t2 - t1):.0f} ms"
        )
    assert t1 - t0 < 2 and t2 - t1 < 2


def _parse_ans(payload: bytes):
    pos = 0

    def varint():
        nonlocal pos
        v = s = 0
        while True:
            b = payload[pos]
            pos += 1
            v |= (b & 0x7F) << s
            s += 7
            if not b & 0x80:
                return v

    code, ndim = payload[0], payload[1]
    pos = 8
    shape = struct.unpack_from(f"<{ndim}Q", payload, pos)
    pos += 8 * ndim
    n_cols = shape[1] if ndim == 2 else 1
    cols = []
    for _ in range(n_cols):
        mode = payload[pos]
        pos += 1
        z = varint()
        lo = z >> 1 if not z & 1 else -((z + 1) >> 1)
        if mode == 0:
            cols.append((lo, None))
            continue
        if mode == 1:
            counts = [varint() for _ in range(varint())]
        else:
            sym, got = 0, {}
            for _ in range(varint()):
                sym += varint()
                got[sym] = varint()
            counts = [got.get(s, 0) for s in range(sym + 1)]
        cols.append((lo, counts))
    n_words = varint()
    pos += -pos % 4
    words = list(struct.unpack_from(f"<{n_words}I", payload, pos))
    assert pos + 4 * n_words == len(payload)
    return DTYPE_CODES[code], shape, cols, words


def ref_decode_ans(payload: bytes) -> np.ndarray:
    """Pure-Python decoder written from the format description in ``splatpack/spk/arrays/ans.py``
    (a template for a JavaScript implementation); checked against constriction by the tests."""
    dtype, shape, cols, words = _parse_ans(payload)
    precision = 24
    n_rows = shape[0]
    state = 0
    if words:
        state = words.pop()
        while words and state < 1 << 32:
            state = state << 32 | words.pop()
    out = np.zeros((n_rows, len(cols)), np.int64)
    for j, (lo, counts) in enumerate(cols):
        if counts is None:
            out[:, j] = lo
            continue
        n = len(counts)
        scale = float((1 << precision) - n) / float(sum(counts))  # IEEE float64, as in JS
        left, c = [], 0
        for s in range(n):
            left.append(math.floor(float(c) * scale) + s)
            c += counts[s]
        left.append(1 << precision)
        for i in range(n_rows):
            q = state & ((1 << precision) - 1)
            s = bisect.bisect_right(left, q) - 1
            state = (state >> precision) * (left[s + 1] - left[s]) + q - left[s]
            if state < 1 << 32 and words:
                state = state << 32 | words.pop()
            out[i, j] = lo + s
    assert state == 0 and not words
    return out.astype(dtype.newbyteorder("=")).reshape(shape)


def test_reference_decoder_matches_constriction():
    rng = np.random.default_rng(1)
    modes: set = set()
    for trial in range(24):
        n, k, span = int(rng.integers(1, 250)), int(rng.integers(1, 4)), int(rng.integers(2, 3000))
        p = rng.dirichlet(np.full(span, 0.05 if trial % 2 else 1.0))  # sparse / dense counts
        arr = (rng.choice(span, size=(n, k), p=p) - span // 3).astype(np.int32)
        if trial % 3 == 0:
            arr[:, 0] = 7
        payload = encode_array(arr, "ans")
        modes.update(col[1] is not None and len(col[1]) for col in _parse_ans(payload)[2])
        assert same(ref_decode_ans(payload), arr), trial
    assert len(modes) > 5  # constant columns and many alphabet sizes were exercised


@pytest.mark.parametrize(
    "payload, pattern",
    [
        (b"", "payload truncated in array header"),
        (bytes([99, 1]) + bytes(6) + bytes(8), "unknown dtype code 99"),
        (bytes([1, 9]) + bytes(6), "ndim 9 exceeds 8"),
        (bytes([1, 1, 0, 0, 0, 0, 0, 1]) + bytes(8), "reserved header bytes are not zero"),
        (struct.pack("<BB6xQ", 1, 1, 2**41), "dimension over 2..40"),
        (struct.pack("<BB6xQQ", 1, 2, 2**20, 2**20), "more than the limit"),
        (ans_payload((3,), [b"\x01\x00\x02\x01\x01"], [1]), "counts sum to 2, expected 3"),
        (ans_payload((3,), [b"\x01\x00\x01\x03"], [1]), "alphabet size 1 is outside"),
        (ans_payload((3,), [b"\x01\x00\xff\xff\x07"], []), "alphabet size .* is outside"),
        (ans_payload((3,), [b"\x01\x00\x02\x00\x03"], []), "zero counts at the alphabet ends"),
        (ans_payload((3,), [b"\x02\x00\x02\x01\x01\x00\x02"], []), "invalid symbol gaps"),
        (ans_payload((3,), [b"\x02\x00\x02\x00\x01\x01\x00"], []), "lists a zero count"),
        (ans_payload((3,), [b"\x07\x00"], []), "unknown model mode 7"),
        (ans_payload((3,), [b"\x00\x80\x04"], []), "value 256 is out of range for uint8"),
        (ans_payload((3,), [b"\x01\xfe\x03\x02\x02\x01"], []), r"values 255..256 are out of range"),
        (ans_payload((0,), [b"\x00\x02"], []), "empty array has a nonzero value"),
        (ans_payload((3,), [b"\x00\x02"], [5]), "no column is coded"),
        (ans_payload((3,), [b"\x01\x00\x02\x01\x02"], [1, 0]), "invalid compressed data"),
        (ans_payload((3,), [b"\x01\x00\x02\x01\x02"], [12345, 678, 9]), "left over|recorded symbol counts"),
        (ans_payload((3,), [b"\x01\x00\x02\x01\x02"], [])[:-1], "truncated|does not match"),
        (ans_payload((3,), [b"\x01\x00\x02\x01\x02"], []) + b"\0\0\0\0", "does not match"),
        (ans_payload((2, 10**6), [], []), "payload too short for 1000000 columns"),
        (struct.pack("<BB6xQ", 10, 1, 3), "payload too short|dtype float32 is not allowed"),
    ],
)
def test_ans_decode_errors(payload, pattern):
    with pytest.raises(CodecError, match=pattern) as exc:
        decode_array(payload, "ans", name="rvq")
    assert str(exc.value).startswith("array 'rvq' (ans): ") and "\n" not in str(exc.value)


@settings(FUZZ, max_examples=130)
@given(which=st.sampled_from(["ans", "ans_planes", "ans_sparse"]), data=st.data())
def test_fuzz_mutated_ans(which, data):
    # dense models, constant columns and sparse models
    decode_cleanly(data.draw(mutated(which)), "ans")
