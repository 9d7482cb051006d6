"""The ``raw`` and ``deflate`` array codecs.

``raw``: the array header, then the elements, little-endian, C order. The header is 8 + 8*ndim
bytes, so the data starts 8-byte aligned inside an 8-byte-aligned ``.spk`` payload (a
JavaScript reader can view it with a typed array without copying).

``deflate``: zlib (RFC 1950) of the complete ``raw`` payload.
"""

from __future__ import annotations

import zlib

import numpy as np

from splatpack.spk.arrays.base import CodecError, Expect, check_params
from splatpack.spk.arrays.header import (
    DTYPE_CODES,
    MAX_NDIM,
    Reader,
    array_header,
    dtype_code,
    native,
    read_array_header,
)


def encode_raw(arr: np.ndarray) -> bytes:
    """The ``raw`` payload of ``arr``."""
    code = dtype_code(arr.dtype)
    if arr.ndim > MAX_NDIM:
        raise CodecError(f"arrays with more than {MAX_NDIM} dimensions are not supported")
    data = np.ascontiguousarray(arr, dtype=DTYPE_CODES[code])
    return array_header(code, arr.shape) + data.tobytes()


def _native_copy(data, dtype: np.dtype, shape: tuple[int, ...], count: int, offset: int = 0) -> np.ndarray:
    """A writable, native-endian copy of ``count`` little-endian elements of ``data`` at ``offset``."""
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return flat.astype(native(dtype), copy=True).reshape(shape)


class RawCodec:
    name = "raw"

    def encode(self, arr: np.ndarray, **params) -> bytes:
        check_params(self.name, params)
        return encode_raw(arr)

    def decode(self, payload, name: str, max_elements: int | None, expect: Expect = None) -> np.ndarray:
        r = Reader(payload, name, self.name)
        dtype, shape, count = read_array_header(r, max_elements, expect)
        expected = count * dtype.itemsize
        if r.remaining != expected:
            raise r.fail(f"payload holds {r.remaining} data bytes, shape {shape} of {native(dtype)} needs {expected}")
        return _native_copy(r.data, dtype, shape, count, r.pos)


def _inflate_exact(d, pending: bytes, n: int, r: Reader, what: str) -> tuple[bytes, bytes]:
    """Inflate exactly ``n`` bytes (never more); returns (output, unconsumed input)."""
    out = bytearray()
    while len(out) < n:
        try:
            chunk = d.decompress(pending, n - len(out))
        except zlib.error as exc:
            raise r.fail(f"corrupt deflate stream ({exc})") from None
        pending = d.unconsumed_tail
        out += chunk
        if not chunk and not pending:
            break
    if len(out) < n:
        raise r.fail(f"deflate stream ends early in {what}")
    return bytes(out), pending


class DeflateCodec:
    name = "deflate"

    def encode(self, arr: np.ndarray, **params) -> bytes:
        check_params(self.name, params)
        return zlib.compress(encode_raw(arr), 6)

    def decode(self, payload, name: str, max_elements: int | None, expect: Expect = None) -> np.ndarray:
        """Inflates the header first and the data only as far as the header allows."""
        r = Reader(payload, name, self.name)
        d = zlib.decompressobj()
        head, pending = _inflate_exact(d, bytes(payload), 8, r, "array header")
        ndim = head[1]
        if ndim > MAX_NDIM:
            raise r.fail(f"ndim {ndim} exceeds {MAX_NDIM}")
        shape_bytes, pending = _inflate_exact(d, pending, 8 * ndim, r, "array shape")
        hr = Reader(head + shape_bytes, name, self.name)
        dtype, shape, count = read_array_header(hr, max_elements, expect)
        expected = count * dtype.itemsize
        data, pending = _inflate_exact(d, pending, expected, r, "array data")
        try:
            extra = d.decompress(pending, 1)
        except zlib.error as exc:
            raise r.fail(f"corrupt deflate stream ({exc})") from None
        if extra or not d.eof or d.unused_data or d.unconsumed_tail:
            raise r.fail(f"deflate stream does not end after {expected} data bytes")
        return _native_copy(data, dtype, shape, count)
