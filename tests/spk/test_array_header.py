"""The array header every payload starts with (:mod:`splatpack.spk.arrays.header`): expected shape
and dtype, element limits before allocation, random payloads for every codec.

Hypothesis cases in this file (``max_examples``): random payloads 100.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spk_payloads import FUZZ, ans_payload, decode_cleanly, same

from splatpack.spk.arrays import CODECS, CodecError, decode_array, encode_array
from splatpack.spk.arrays.header import unzigzag, write_varint, zigzag


def test_expected_shape_and_dtype_are_checked_before_decoding():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for codec in sorted(CODECS):
        payload = encode_array(arr, codec)
        assert same(decode_array(payload, codec, shape=(3, 4), dtype=np.uint8), arr)
        with pytest.raises(CodecError, match=r"shape \(3, 4\) differs from the expected \(4, 3\)"):
            decode_array(payload, codec, shape=(4, 3))
        with pytest.raises(CodecError, match="dtype uint8 differs from the expected uint16"):
            decode_array(payload, codec, dtype=np.uint16)


def test_no_large_allocation_from_forged_shapes():
    cases = [
        # 100 MB of zeros: refused from the header, before inflating the data
        (zlib.compress(struct.pack("<BB6xQ", 1, 1, 10**8) + bytes(10**8)), "deflate", 10**6),
        # 16 elements followed by 10 MB of junk: inflation stops after 17 data bytes
        (zlib.compress(struct.pack("<BB6xQ", 1, 1, 16) + bytes(10**7)), "deflate", None),
        (ans_payload((10**9,), [b"\x00\x00"], []), "ans", None),  # constant column, 1e9 rows
        (ans_payload((10**6, 2**20), [], []), "ans", None),
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


@settings(FUZZ, max_examples=100)
@given(payload=st.binary(max_size=200), codec=st.sampled_from(sorted(CODECS)))
def test_fuzz_random_payloads(payload, codec):
    decode_cleanly(payload, codec)


def test_varint_and_zigzag():
    for v in [0, 1, -1, 63, -64, 64, 2**31 - 1, -(2**31), 2**62]:
        assert unzigzag(zigzag(v)) == v and zigzag(v) >= 0
    out = bytearray()
    write_varint(300, out)
    assert bytes(out) == b"\xac\x02"
