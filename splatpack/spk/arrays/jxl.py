"""The ``jxl`` array codec: the array header and a JPEG XL image (ISO/IEC 18181).

The image is a JPEG XL codestream, bare (``FF 0A``) or in the ISOBMFF container with the
codestream in a ``jxlc`` box (libjxl writes the container for more than 12 bits per sample,
codestream level 10); ``bits`` significant bits per sample (u8: 1..8, u16: 9..16), returned
unscaled. Lossless unless a Butteraugli ``distance`` > 0 is given (then values are within a
few steps, with no bound).

The decoder reads the image size from the codestream's SizeHeader (ISO/IEC 18181-1) before
decoding, to compare it with the array header.
"""

from __future__ import annotations

import struct

import numpy as np

from splatpack.spk.arrays.base import CodecError
from splatpack.spk.arrays.header import Reader
from splatpack.spk.arrays.images import Geometry, ImageCodec

_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
_RATIOS = ((1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1))


def jxl_codestream(data: bytes) -> bytes | None:
    """The start of the codestream: ``data`` itself when bare (``FF 0A``), else the content of the
    first ``jxlc`` (or ``jxlp``) box of an ISOBMFF container (ISO/IEC 18181-2); None if neither."""
    if data[:2] == b"\xff\x0a":
        return data
    if data[: len(_CONTAINER)] != _CONTAINER:
        return None
    pos = len(_CONTAINER)
    while pos + 8 <= len(data):  # every box is at least 8 bytes: at most len/8 iterations
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if pos + 16 > len(data):
                return None
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = len(data) - pos
        if size < head or pos + size > len(data):
            return None
        if kind == b"jxlc":
            return data[pos + head : pos + size]
        if kind == b"jxlp":
            return data[pos + head + 4 : pos + size]
        pos += size
    return None


def jxl_size(data: bytes) -> tuple[int, int] | None:
    """(ysize, xsize) from a JPEG XL codestream's SizeHeader (ISO/IEC 18181-1), or None."""
    data = jxl_codestream(data)
    if data is None or data[:2] != b"\xff\x0a":
        return None
    head = data[2:12]  # a SizeHeader is at most 68 bits
    value, avail, pos = int.from_bytes(head, "little"), 8 * len(head), 0

    def take(n: int) -> int:
        nonlocal pos
        if pos + n > avail:
            raise IndexError
        out = (value >> pos) & ((1 << n) - 1)
        pos += n
        return out

    def u32() -> int:  # U32(BitsOffset(9, 1), BitsOffset(13, 1), BitsOffset(18, 1), BitsOffset(30, 1))
        return take((9, 13, 18, 30)[take(2)]) + 1

    try:
        small = take(1)
        ysize = 8 * (take(5) + 1) if small else u32()
        ratio = take(3)
        if ratio == 0:
            xsize = 8 * (take(5) + 1) if small else u32()
        else:
            num, den = _RATIOS[ratio - 1]
            xsize = ysize * num // den
    except IndexError:
        return None
    return ysize, xsize


class JxlCodec(ImageCodec):
    """Encoder parameters: ``bits`` (significant bits per sample; default the dtype's),
    ``distance`` (0 = lossless, the default; > 0 a lossy Butteraugli distance, ~1 visually
    lossless), ``effort`` (1..10, default 7)."""

    name = "jxl"
    params = frozenset({"bits", "distance", "effort"})

    def encode_image(self, ic, img: np.ndarray, geometry: Geometry, params: dict) -> bytes:
        dtype = img.dtype
        lo_bits = 1 if dtype.itemsize == 1 else 9
        bits = int(params.get("bits", 8 * dtype.itemsize))
        if not lo_bits <= bits <= 8 * dtype.itemsize:
            raise CodecError(f"jxl bits {bits} outside {lo_bits}..{8 * dtype.itemsize} for a {dtype} image")
        if img.size and int(img.max()) >> bits:
            raise CodecError(f"jxl image values exceed {bits} bits")
        distance = float(params.get("distance", 0.0))
        if not 0.0 <= distance <= 25.0:
            raise CodecError(f"jxl distance {distance} outside 0..25")
        effort = int(params.get("effort", 7))
        if not 1 <= effort <= 10:
            raise CodecError(f"jxl effort {effort} outside 1..10")
        kw = {"lossless": True} if distance == 0 else {"lossless": False, "distance": distance}
        return ic.jpegxl_encode(img, effort=effort, bitspersample=bits, numthreads=1, **kw)

    def image_size(self, r: Reader, data: bytes, c: int, dtype: np.dtype) -> tuple[int, int]:
        size = jxl_size(data)
        if size is None:
            raise r.fail("not a JPEG XL image (no codestream with a valid size header)")
        return size

    def decode_image(self, ic, data: bytes, out: np.ndarray, c: int) -> np.ndarray:
        return ic.jpegxl_decode(data, index=0, numthreads=1, out=out)
