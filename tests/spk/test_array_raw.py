"""The ``raw`` and ``deflate`` array codecs (:mod:`splatpack.spk.arrays.raw`): round trips, decode
errors, fuzzing.

Hypothesis cases in this file (``max_examples``): round trips 150, mutated payloads 2 x 130 = 410.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spk_payloads import FUZZ, decode_cleanly, mutated

from splatpack.spk.arrays import DTYPE_CODES, CodecError, decode_array, encode_array

ALL_DTYPES = [dt.newbyteorder("=") for dt in DTYPE_CODES.values()]


@settings(FUZZ, max_examples=150)
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from([*ALL_DTYPES, np.dtype(">f4"), np.dtype(">i2")]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
    ),
    codec=st.sampled_from(["raw", "deflate"]),
)
def test_raw_and_deflate_round_trip(arr, codec):
    out = decode_array(encode_array(arr, codec), codec)
    assert out.dtype == arr.dtype.newbyteorder("=") and out.shape == arr.shape
    assert out.flags.writeable and out.dtype.isnative
    assert out.tobytes() == arr.astype(out.dtype).tobytes()  # bit-identical, NaNs included


def test_raw_and_deflate_decode_errors():
    raw = encode_array(np.arange(6, dtype=np.float32).reshape(2, 3), "raw")
    with pytest.raises(
        CodecError, match=r"array 'p' \(raw\): payload holds 20 data bytes, shape \(2, 3\) of float32 needs 24"
    ):
        decode_array(raw[:-4], "raw", name="p")
    with pytest.raises(CodecError, match="more than the limit 5"):
        decode_array(raw, "raw", max_elements=5)
    d = encode_array(np.arange(6, dtype=np.float32), "deflate")
    with pytest.raises(CodecError, match=r"\(deflate\): .*(ends early|corrupt)"):
        decode_array(d[:-6], "deflate")
    with pytest.raises(CodecError, match="does not end after 24 data bytes"):
        decode_array(
            zlib.compress(encode_array(np.arange(7, dtype=np.float32), "raw")[:8] + struct.pack("<Q", 6) + bytes(100)),
            "deflate",
        )
    with pytest.raises(CodecError, match="corrupt deflate stream"):
        decode_array(b"not zlib at all", "deflate")


@settings(FUZZ, max_examples=130)
@given(data=st.data())
def test_fuzz_mutated_raw(data):
    decode_cleanly(data.draw(mutated("raw")), "raw")


@settings(FUZZ, max_examples=130)
@given(data=st.data())
def test_fuzz_mutated_deflate(data):
    decode_cleanly(data.draw(mutated("deflate")), "deflate")
