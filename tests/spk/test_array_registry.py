"""The array-codec registry (:mod:`splatpack.spk.arrays.registry`): lookups by name, the one-line
error for an unknown codec, and a codec registered in :data:`ARRAY_CODECS` being found by
:func:`encode_array` and :func:`decode_array`."""

from __future__ import annotations

import numpy as np
import pytest
from spk_payloads import XorCodec, same

from splatpack.core.errors import SplatpackError
from splatpack.spk.arrays import (
    ARRAY_CODECS,
    CODECS,
    IMAGE_CODECS,
    ArrayCodec,
    CodecError,
    decode_array,
    encode_array,
)

KNOWN = "ans, deflate, jxl, png, raw, webp"


def test_codec_errors():
    with pytest.raises(CodecError, match="unsupported dtype complex128"):
        encode_array(np.zeros(3, complex), "raw")
    with pytest.raises(CodecError, match="unsupported dtype bool"):
        encode_array(np.zeros(3, bool), "deflate")
    with pytest.raises(CodecError, match="unknown codec 'zstd'"):
        encode_array(np.zeros(3, np.uint8), "zstd")
    with pytest.raises(CodecError, match="array 'x': unknown codec 'zstd'"):
        decode_array(b"", "zstd", name="x")
    assert issubclass(CodecError, SplatpackError)
    assert {"jxl", "png", "webp"} == IMAGE_CODECS and {"raw", "deflate", "ans"} | IMAGE_CODECS == CODECS
    with pytest.raises(CodecError, match="codec 'raw' takes no parameters"):
        encode_array(np.zeros(3, np.uint8), "raw", level=3)


def test_registry_entries():
    assert frozenset(ARRAY_CODECS) == CODECS
    for name, codec in ARRAY_CODECS.items():
        assert codec.name == name and isinstance(codec, ArrayCodec)


def test_unknown_codec_is_one_line_error():
    with pytest.raises(CodecError) as exc:
        encode_array(np.zeros(3, np.uint8), "zstd", level=3)
    assert str(exc.value) == f"unknown codec 'zstd' (known: {KNOWN})"
    with pytest.raises(CodecError) as exc:
        decode_array(b"\x00", "zstd", name="x", max_elements=1, shape=(1,), dtype=np.uint8)
    assert str(exc.value) == f"array 'x': unknown codec 'zstd' (known: {KNOWN})"


def test_registered_codec_is_found(monkeypatch):
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    with pytest.raises(CodecError, match="unknown codec 'xor'"):
        encode_array(arr, "xor")
    monkeypatch.setitem(ARRAY_CODECS, "xor", XorCodec())
    payload = encode_array(arr, "xor")
    assert payload == bytes(b ^ 0x5A for b in encode_array(arr, "raw"))
    assert same(decode_array(payload, "xor", shape=(3, 4), dtype=np.int16), arr)
    with pytest.raises(CodecError, match=r"array 'a' \(raw\): shape \(3, 4\) differs from the expected \(4, 3\)"):
        decode_array(payload, "xor", name="a", shape=(4, 3))
    with pytest.raises(CodecError, match="codec 'raw' takes no parameters"):
        encode_array(arr, "xor", level=1)
    with pytest.raises(CodecError) as exc:
        decode_array(payload, "zstd")
    assert str(exc.value) == "array 'array': unknown codec 'zstd' (known: ans, deflate, jxl, png, raw, webp, xor)"
