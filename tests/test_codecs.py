"""Array codecs (raw, deflate, ans, jxl, png, webp): round trips, efficiency, a reference
decoder, fuzzing.

Hypothesis cases in this file (``max_examples``): round trips 150 + 100 + 80, mutated payloads
3 x 130 + 4 x 60, random payloads 100 = 1060.
"""

from __future__ import annotations

import bisect
import math
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from splatpack.spk.arrays import (
    ANS_DTYPES,
    CODECS,
    DTYPE_CODES,
    IMAGE_CODECS,
    CodecError,
    _jxl_size,
    decode_array,
    encode_array,
)
from splatpack.core.errors import SplatpackError

FUZZ = settings(deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------- round trips

ALL_DTYPES = [dt.newbyteorder("=") for dt in DTYPE_CODES.values()]


@settings(FUZZ, max_examples=150)
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from(ALL_DTYPES + [np.dtype(">f4"), np.dtype(">i2")]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
    ),
    codec=st.sampled_from(["raw", "deflate"]),
)
def test_raw_and_deflate_round_trip(arr, codec):
    out = decode_array(encode_array(arr, codec), codec)
    assert out.dtype == arr.dtype.newbyteorder("=") and out.shape == arr.shape
    assert out.flags.writeable and out.dtype.isnative
    assert out.tobytes() == arr.astype(out.dtype).tobytes()  # bit-identical, NaNs included


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
    with pytest.raises(CodecError, match="unsupported dtype complex128"):
        encode_array(np.zeros(3, complex), "raw")
    with pytest.raises(CodecError, match="unsupported dtype bool"):
        encode_array(np.zeros(3, bool), "deflate")
    with pytest.raises(CodecError, match="unknown codec 'zstd'"):
        encode_array(np.zeros(3, np.uint8), "zstd")
    with pytest.raises(CodecError, match="array 'x': unknown codec 'zstd'"):
        decode_array(b"", "zstd", name="x")
    assert issubclass(CodecError, SplatpackError)
    assert IMAGE_CODECS == {"jxl", "png", "webp"} and CODECS == {"raw", "deflate", "ans"} | IMAGE_CODECS
    with pytest.raises(CodecError, match="codec 'raw' takes no parameters"):
        encode_array(np.zeros(3, np.uint8), "raw", level=3)


# --------------------------------------------------------------------------- efficiency


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
    assert t1 - t0 < 2 and t2 - t1 < 2  # ~20 and ~40 ms here


# --------------------------------------------------------------------------- reference decoder


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
    """Pure-Python decoder written from the format description in ``codecs.py`` (a template
    for a JavaScript implementation); checked against constriction by the tests."""
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


# --------------------------------------------------------------------------- validation


def _ans_payload(shape, columns: list[bytes], words: list[int], code=1) -> bytes:
    out = bytearray(struct.pack(f"<BB6x{len(shape)}Q", code, len(shape), *shape))
    for c in columns:
        out += c
    out.append(len(words))
    out += bytes(-len(out) % 4)
    out += struct.pack(f"<{len(words)}I", *words)
    return bytes(out)


@pytest.mark.parametrize(
    "payload, pattern",
    [
        (b"", "payload truncated in array header"),
        (bytes([99, 1]) + bytes(6) + bytes(8), "unknown dtype code 99"),
        (bytes([1, 9]) + bytes(6), "ndim 9 exceeds 8"),
        (bytes([1, 1, 0, 0, 0, 0, 0, 1]) + bytes(8), "reserved header bytes are not zero"),
        (struct.pack("<BB6xQ", 1, 1, 2**41), "dimension over 2..40"),
        (struct.pack("<BB6xQQ", 1, 2, 2**20, 2**20), "more than the limit"),
        (_ans_payload((3,), [b"\x01\x00\x02\x01\x01"], [1]), "counts sum to 2, expected 3"),
        (_ans_payload((3,), [b"\x01\x00\x01\x03"], [1]), "alphabet size 1 is outside"),
        (_ans_payload((3,), [b"\x01\x00\xff\xff\x07"], []), "alphabet size .* is outside"),
        (_ans_payload((3,), [b"\x01\x00\x02\x00\x03"], []), "zero counts at the alphabet ends"),
        (_ans_payload((3,), [b"\x02\x00\x02\x01\x01\x00\x02"], []), "invalid symbol gaps"),
        (_ans_payload((3,), [b"\x02\x00\x02\x00\x01\x01\x00"], []), "lists a zero count"),
        (_ans_payload((3,), [b"\x07\x00"], []), "unknown model mode 7"),
        (_ans_payload((3,), [b"\x00\x80\x04"], []), "value 256 is out of range for uint8"),
        (_ans_payload((3,), [b"\x01\xfe\x03\x02\x02\x01"], []), r"values 255..256 are out of range"),
        (_ans_payload((0,), [b"\x00\x02"], []), "empty array has a nonzero value"),
        (_ans_payload((3,), [b"\x00\x02"], [5]), "no column is coded"),
        (_ans_payload((3,), [b"\x01\x00\x02\x01\x02"], [1, 0]), "invalid compressed data"),
        (_ans_payload((3,), [b"\x01\x00\x02\x01\x02"], [12345, 678, 9]), "left over|recorded symbol counts"),
        (_ans_payload((3,), [b"\x01\x00\x02\x01\x02"], [])[:-1], "truncated|does not match"),
        (_ans_payload((3,), [b"\x01\x00\x02\x01\x02"], []) + b"\0\0\0\0", "does not match"),
        (_ans_payload((2, 10**6), [], []), "payload too short for 1000000 columns"),
        (struct.pack("<BB6xQ", 10, 1, 3), "payload too short|dtype float32 is not allowed"),
    ],
)
def test_ans_decode_errors(payload, pattern):
    with pytest.raises(CodecError, match=pattern) as exc:
        decode_array(payload, "ans", name="rvq")
    assert str(exc.value).startswith("array 'rvq' (ans): ") and "\n" not in str(exc.value)


def test_raw_and_deflate_decode_errors():
    raw = encode_array(np.arange(6, dtype=np.float32).reshape(2, 3), "raw")
    with pytest.raises(CodecError, match=r"array 'p' \(raw\): payload holds 20 data bytes, shape \(2, 3\) of float32 needs 24"):
        decode_array(raw[:-4], "raw", name="p")
    with pytest.raises(CodecError, match="more than the limit 5"):
        decode_array(raw, "raw", max_elements=5)
    d = encode_array(np.arange(6, dtype=np.float32), "deflate")
    with pytest.raises(CodecError, match=r"\(deflate\): .*(ends early|corrupt)"):
        decode_array(d[:-6], "deflate")
    with pytest.raises(CodecError, match="does not end after 24 data bytes"):
        decode_array(zlib.compress(encode_array(np.arange(7, dtype=np.float32), "raw")[:8] + struct.pack("<Q", 6) + bytes(100)), "deflate")
    with pytest.raises(CodecError, match="corrupt deflate stream"):
        decode_array(b"not zlib at all", "deflate")


def test_no_large_allocation_from_forged_shapes():
    cases = [
        # 100 MB of zeros: refused from the header, before inflating the data
        (zlib.compress(struct.pack("<BB6xQ", 1, 1, 10**8) + bytes(10**8)), "deflate", 10**6),
        # 16 elements followed by 10 MB of junk: inflation stops after 17 data bytes
        (zlib.compress(struct.pack("<BB6xQ", 1, 1, 16) + bytes(10**7)), "deflate", None),
        (_ans_payload((10**9,), [b"\x00\x00"], []), "ans", None),  # constant column, 1e9 rows
        (_ans_payload((10**6, 2**20), [], []), "ans", None),
        (struct.pack("<BB6xQQ", 11, 2, 2**40, 2**40), "raw", None),
    ]
    tracemalloc.start()
    try:
        for payload, codec, limit in cases:
            with pytest.raises(CodecError):
                decode_array(payload, codec, max_elements=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


# --------------------------------------------------------------------------- image codecs


@st.composite
def images(draw):
    codec = draw(st.sampled_from(sorted(IMAGE_CODECS)))
    dtype = np.dtype(np.uint8) if codec == "webp" else draw(st.sampled_from([np.dtype(np.uint8), np.dtype(np.uint16)]))
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    c = draw(st.sampled_from([None, 1, 2, 3, 4]))
    shape = (h, w) if c is None else (h, w, c)
    params = {}
    top = 8 * dtype.itemsize
    if codec == "jxl":
        params["bits"] = draw(st.integers(1 if top == 8 else 9, top))
        params["effort"] = draw(st.integers(1, 3))
        top = params["bits"]
    seed = draw(st.integers(0, 2**32 - 1))
    arr = np.random.default_rng(seed).integers(0, 1 << top, shape).astype(dtype)
    if draw(st.booleans()):  # smooth content too
        arr = (np.cumsum(np.ones(shape), axis=1) % (1 << top)).astype(dtype)
    return codec, arr, params


@settings(FUZZ, max_examples=80)
@given(case=images())
def test_image_round_trip(case):
    codec, arr, params = case
    payload = encode_array(arr, codec, **params)
    out = decode_array(payload, codec, max_elements=arr.size, shape=arr.shape, dtype=arr.dtype)
    assert same(out, arr) and out.flags.writeable
    assert struct.unpack_from(f"<BB6x{arr.ndim}Q", payload) == (_DTYPE_CODE[arr.dtype], arr.ndim, *arr.shape)


_DTYPE_CODE = {dt.newbyteorder("="): code for code, dt in DTYPE_CODES.items()}


def _smooth(h, w, c, top):
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    chans = [np.sin(3 * x + 2 * y + k) for k in range(c)]
    img = np.stack(chans, -1) * 0.5 + 0.5
    return np.rint(img * top).astype(np.uint16 if top > 255 else np.uint8)


def test_image_codecs_compress_smooth_images():
    img = _smooth(64, 64, 3, 4095)
    raw = img.nbytes
    for codec, params in [("jxl", {"bits": 12}), ("png", {})]:
        assert len(encode_array(img, codec, **params)) < 0.5 * raw, codec
    img8 = _smooth(64, 64, 3, 255)
    assert len(encode_array(img8, "webp")) < 0.5 * img8.nbytes


def test_jxl_lossy_and_high_bit_depths():
    img = _smooth(64, 48, 3, 4095)
    lossless = encode_array(img, "jxl", bits=12)
    lossy = encode_array(img, "jxl", bits=12, distance=1.0)
    out = decode_array(lossy, "jxl")
    assert len(lossy) < len(lossless) and out.shape == img.shape and out.dtype == np.uint16
    assert np.abs(out.astype(int) - img).mean() < 0.01 * 4095
    assert same(decode_array(lossy, "jxl"), out)  # deterministic
    # more than 12 bits per sample: libjxl wraps the codestream (level 10) in the ISOBMFF container
    img16 = _smooth(20, 30, 4, 65535)
    payload = encode_array(img16, "jxl", bits=16)
    assert payload[8 + 24 : 8 + 24 + 12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n"
    assert _jxl_size(payload[32:]) == (20, 30) and same(decode_array(payload, "jxl"), img16)


def test_jxl_size_header_parser():
    import imagecodecs

    for h, w in [(1, 1), (8, 8), (256, 256), (64, 77), (100, 120), (90, 120), (90, 160), (100, 125), (9, 18), (3000, 5), (5, 70000)]:
        codestream = imagecodecs.jpegxl_encode(np.zeros((h, w), np.uint8), lossless=True, effort=1)
        assert _jxl_size(codestream) == (h, w)
    assert _jxl_size(b"\xff\x0a") is None and _jxl_size(b"\x89PNG") is None


def test_image_encode_refusals():
    with pytest.raises(CodecError, match="webp codec codes uint8 images, not uint16"):
        encode_array(np.zeros((4, 4), np.uint16), "webp")
    with pytest.raises(CodecError, match="C = 1..4"):
        encode_array(np.zeros((4, 4, 5), np.uint8), "png")
    with pytest.raises(CodecError, match="C = 1..4"):
        encode_array(np.zeros((0, 4), np.uint8), "jxl")
    with pytest.raises(CodecError, match="jxl bits 12 outside 1..8"):
        encode_array(np.zeros((4, 4), np.uint8), "jxl", bits=12)
    with pytest.raises(CodecError, match="exceed 5 bits"):
        encode_array(np.full((4, 4), 32, np.uint8), "jxl", bits=5)
    with pytest.raises(CodecError, match="unknown parameters \\['distance'\\] for codec 'png'"):
        encode_array(np.zeros((4, 4), np.uint8), "png", distance=1.0)
    with pytest.raises(CodecError, match="webp images are at most"):
        encode_array(np.zeros((16384, 1), np.uint8), "webp")
    with pytest.raises(CodecError, match="codes uint8 or uint16 images, not float32"):
        encode_array(np.zeros((4, 4), np.float32), "jxl")


def _header(dtype_code: int, shape) -> bytes:
    return struct.pack(f"<BB6x{len(shape)}Q", dtype_code, len(shape), *shape)


def test_image_decode_errors():
    import imagecodecs

    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    png = imagecodecs.png_encode(rgb)
    cases = [
        (_header(1, (4, 5, 3)) + png, "png", r"image is 4x6, the array header says 4x5"),
        (_header(3, (4, 6, 3)) + png, "png", r"PNG bit depth 8 / colour type 2 does not match the array header \(16-bit, 3 channels\)"),
        (_header(1, (4, 6, 4)) + png, "png", r"colour type 2 does not match .*4 channels"),
        (_header(1, (4, 6, 3)) + png[:-1], "png", "does not end with its IEND chunk"),
        (_header(1, (4, 6, 3)) + png + b"x", "png", "does not end with its IEND chunk"),
        (_header(1, (4, 6, 3)) + b"GIF89a" + bytes(40), "png", "not a PNG image"),
        (_header(10, (4, 6, 3)) + png, "png", "dtype float32 is not allowed in a png payload"),
        (_header(1, (4, 6, 5)) + png, "png", r"shape \(4, 6, 5\) is not an image"),
        (_header(1, (0, 6)) + png, "png", r"shape \(0, 6\) is not an image"),
        (_header(3, (4, 6, 3)) + imagecodecs.webp_encode(rgb, lossless=True), "webp", "dtype uint16 is not allowed"),
        (_header(1, (4, 6, 3)) + imagecodecs.webp_encode(rgb, lossless=False, level=90), "webp", "not a lossless WebP image"),
        (_header(1, (4, 6, 3)) + imagecodecs.webp_encode(rgb, lossless=True) + b"xy", "webp", "WebP sizes do not match"),
        (_header(1, (4, 7, 3)) + imagecodecs.webp_encode(rgb, lossless=True), "webp", "image is 4x6, the array header says 4x7"),
        (_header(1, (4, 6)) + imagecodecs.webp_encode(rgb, lossless=True), "webp", "padding channels are not zero"),
        (_header(1, (4, 6, 3)) + b"\xff\x0a", "jxl", "not a JPEG XL image"),
        (_header(1, (4, 6, 3)) + imagecodecs.jpegxl_encode(rgb[:3], lossless=True), "jxl", "image is 3x6, the array header says 4x6"),
        (_header(1, (4, 6)) + imagecodecs.jpegxl_encode(rgb, lossless=True), "jxl", r"corrupt image \(ValueError"),
        (_header(3, (4, 6, 3)) + imagecodecs.jpegxl_encode(rgb, lossless=True), "jxl", "corrupt image"),
        (_header(1, (4, 6, 3)) + imagecodecs.jpegxl_encode(rgb, lossless=True)[:-9], "jxl", "corrupt image"),
    ]
    for payload, codec, pattern in cases:
        with pytest.raises(CodecError, match=pattern) as exc:
            decode_array(payload, codec, name="img")
        assert str(exc.value).startswith(f"array 'img' ({codec}): ") and "\n" not in str(exc.value)


def test_expected_shape_and_dtype_are_checked_before_decoding():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for codec in sorted(CODECS):
        payload = encode_array(arr, codec)
        assert same(decode_array(payload, codec, shape=(3, 4), dtype=np.uint8), arr)
        with pytest.raises(CodecError, match=r"shape \(3, 4\) differs from the expected \(4, 3\)"):
            decode_array(payload, codec, shape=(4, 3))
        with pytest.raises(CodecError, match="dtype uint8 differs from the expected uint16"):
            decode_array(payload, codec, dtype=np.uint16)


def _jxl_forged_size(side_minus_1: int) -> bytes:
    """A codestream whose SizeHeader claims a (side × side) image, and nothing else."""
    bits = [0]  # not small
    bits += [1, 1]  # U32 selector 3: BitsOffset(30, 1)
    bits += [(side_minus_1 >> i) & 1 for i in range(30)]
    bits += [1, 0, 0]  # ratio 1: xsize = ysize
    value = sum(b << i for i, b in enumerate(bits))
    return b"\xff\x0a" + value.to_bytes(8, "little") + bytes(64)


def test_forged_image_headers_allocate_nothing():
    """The image's own header is checked against the (bounded) array header before decoding."""
    assert _jxl_size(_jxl_forged_size(2**30 - 1)) == (2**30, 2**30)
    png_head = bytearray(encode_array(np.zeros((4, 4), np.uint8), "png")[24:])
    png_head[16:24] = struct.pack(">II", 60000, 60000)
    webp = bytearray(encode_array(np.zeros((4, 4, 3), np.uint8), "webp")[32:])
    webp[21:25] = struct.pack("<I", 0x0FFFFFFF)  # 16384 x 16384
    cases = [
        (_header(1, (4, 4)) + _jxl_forged_size(2**30 - 1), "jxl"),
        (_header(1, (4, 4)) + bytes(png_head), "png"),
        (_header(1, (4, 4, 3)) + bytes(webp), "webp"),
        (_header(1, (2**20, 2**20, 3)) + _jxl_forged_size(2**20 - 1), "jxl"),  # over max_elements
    ]
    tracemalloc.start()
    try:
        for payload, codec in cases:
            with pytest.raises(CodecError, match="image is|more than the limit"):
                decode_array(payload, codec, max_elements=10**6)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak


# --------------------------------------------------------------------------- fuzzing


def _fuzz_inputs():
    rng = np.random.default_rng(5)
    planes = np.zeros((60, 8), np.uint8)
    planes[:, :3] = rng.integers(0, 256, (60, 3))
    return {
        "raw": encode_array(rng.normal(size=(30, 3)).astype(np.float32), "raw"),
        "deflate": encode_array(rng.integers(0, 40, (50, 4)).astype(np.int16), "deflate"),
        "ans": encode_array(rng.geometric(0.1, (80, 6)).astype(np.uint16), "ans"),  # dense models
        "ans_planes": encode_array(planes, "ans"),
        "ans_sparse": encode_array((rng.geometric(0.3, 90) * 1000).astype(np.int32), "ans"),
        "jxl": encode_array(_smooth(12, 10, 3, 63), "jxl", bits=6),
        "jxl16": encode_array(_smooth(9, 11, 4, 16383), "jxl", bits=14),  # ISOBMFF container
        "png": encode_array(_smooth(10, 9, 4, 4000), "png"),
        "webp": encode_array(_smooth(11, 10, 2, 255), "webp"),
    }


FUZZ_INPUTS = _fuzz_inputs()


def _decode_cleanly(payload: bytes, codec: str) -> None:
    try:
        arr = decode_array(payload, codec, name="fuzzed", max_elements=10_000)
    except CodecError as exc:
        msg = str(exc)
        assert msg.startswith(f"array 'fuzzed' ({codec}): ") and "\n" not in msg, msg
        return
    assert isinstance(arr, np.ndarray) and arr.size <= 10_000


@st.composite
def mutated(draw, key):
    data = bytearray(FUZZ_INPUTS[key])
    kind = draw(st.sampled_from(["flip", "set", "truncate", "append", "header"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "set":
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "append":
        data += draw(st.binary(min_size=1, max_size=16))
    else:  # forge a header/shape word (shape fields are u64 at offsets 8, 16)
        at = draw(st.sampled_from([0, 1, 8, 16]))
        if at < 8:
            data[at] = draw(st.integers(0, 255))
        elif at + 8 <= len(data):
            value = draw(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**31, 2**40, 2**64 - 1])))
            data[at : at + 8] = struct.pack("<Q", value)
    return bytes(data)


@settings(FUZZ, max_examples=130)
@given(data=st.data())
def test_fuzz_mutated_raw(data):
    _decode_cleanly(data.draw(mutated("raw")), "raw")


@settings(FUZZ, max_examples=130)
@given(data=st.data())
def test_fuzz_mutated_deflate(data):
    _decode_cleanly(data.draw(mutated("deflate")), "deflate")


@settings(FUZZ, max_examples=130)
@given(which=st.sampled_from(["ans", "ans_planes", "ans_sparse"]), data=st.data())
def test_fuzz_mutated_ans(which, data):
    # dense models, constant columns and sparse models
    _decode_cleanly(data.draw(mutated(which)), "ans")


@pytest.mark.parametrize("which", ["jxl", "jxl16", "png", "webp"])
@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_fuzz_mutated_images(which, data):
    _decode_cleanly(data.draw(mutated(which)), which.rstrip("16"))


@settings(FUZZ, max_examples=100)
@given(payload=st.binary(max_size=200), codec=st.sampled_from(sorted(CODECS)))
def test_fuzz_random_payloads(payload, codec):
    _decode_cleanly(payload, codec)
