"""The array header every payload starts with, and the bounds-checked reader the decoders share.

Byte layout (all integers little-endian)::

    offset size  field
    0      1     u8  dtype code (see DTYPE_CODES: 1=u8 2=i8 3=u16 4=i16 5=u32 6=i32
                     7=u64 8=i64 9=f16 10=f32 11=f64)
    1      1     u8  ndim (0..8; the ``ans`` codec allows 1 or 2)
    2      6     reserved, must be zero
    8      8*ndim u64 shape (C order; each dimension <= 2**40)

Varints (used by ``ans``) are unsigned LEB128 (at most 10 bytes, < 2**64); zigzag maps
``v -> 2v`` for ``v >= 0`` and ``-v -> 2v - 1``.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from splatpack.spk.arrays.base import CodecError, Expect

#: dtype code in the array header -> little-endian numpy dtype
DTYPE_CODES: dict[int, np.dtype] = {
    1: np.dtype("<u1"),
    2: np.dtype("<i1"),
    3: np.dtype("<u2"),
    4: np.dtype("<i2"),
    5: np.dtype("<u4"),
    6: np.dtype("<i4"),
    7: np.dtype("<u8"),
    8: np.dtype("<i8"),
    9: np.dtype("<f2"),
    10: np.dtype("<f4"),
    11: np.dtype("<f8"),
}
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in DTYPE_CODES.items()}

MAX_NDIM = 8
MAX_DIM = 1 << 40
#: element limit used by :func:`~splatpack.spk.arrays.decode_array` when the caller passes no ``max_elements``
DEFAULT_MAX_ELEMENTS = 1 << 28


def native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=")


def dtype_code(dtype: np.dtype) -> int:
    """The header's dtype code of ``dtype`` (any byte order)."""
    code = _CODE_OF.get((dtype.kind, dtype.itemsize))
    if code is None:
        names = ", ".join(str(native(dt)) for dt in DTYPE_CODES.values())
        raise CodecError(f"unsupported dtype {dtype} (supported: {names})")
    return code


def array_header(code: int, shape: tuple[int, ...]) -> bytes:
    return struct.pack(f"<BB6x{len(shape)}Q", code, len(shape), *shape)


def write_varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


def unzigzag(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


class Reader:
    """Bounds-checked cursor over a payload; every failure is a :class:`CodecError`."""

    def __init__(self, data: bytes | memoryview, name: str, codec: str):
        self.data = memoryview(data).cast("B")
        self.pos = 0
        self.name = name
        self.codec = codec

    def fail(self, problem: str) -> CodecError:
        return CodecError(f"array '{self.name}' ({self.codec}): {problem}")

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n > self.remaining:
            raise self.fail(f"payload truncated in {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str) -> int:
        value = shift = 0
        for _ in range(10):
            if self.pos >= len(self.data):
                raise self.fail(f"payload truncated in {what}")
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if value >= 1 << 64:
                    raise self.fail(f"{what} out of range")
                return value
            shift += 7
        raise self.fail(f"{what} is not a valid varint")


def read_array_header(
    r: Reader, max_elements: int | None, expect: Expect = None
) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, element count) from the header at the reader's position, checked against
    ``max_elements`` (default :data:`DEFAULT_MAX_ELEMENTS`) and ``expect`` before anything is allocated."""
    code = r.u8("array header")
    ndim = r.u8("array header")
    if any(r.take(6, "array header")):
        raise r.fail("reserved header bytes are not zero")
    if code not in DTYPE_CODES:
        raise r.fail(f"unknown dtype code {code}")
    if ndim > MAX_NDIM:
        raise r.fail(f"ndim {ndim} exceeds {MAX_NDIM}")
    shape = struct.unpack(f"<{ndim}Q", r.take(8 * ndim, "array shape"))
    if any(d > MAX_DIM for d in shape):
        raise r.fail(f"shape {shape} has a dimension over 2**40")
    count = math.prod(shape)
    limit = DEFAULT_MAX_ELEMENTS if max_elements is None else max_elements
    if count > limit:
        raise r.fail(f"shape {shape} has {count} elements, more than the limit {limit}")
    if expect is not None:
        want_shape, want_dtype = expect
        if want_shape is not None and shape != want_shape:
            raise r.fail(f"shape {shape} differs from the expected {want_shape}")
        if want_dtype is not None and DTYPE_CODES[code] != want_dtype:
            raise r.fail(f"dtype {native(DTYPE_CODES[code])} differs from the expected {native(want_dtype)}")
    return DTYPE_CODES[code], shape, count
