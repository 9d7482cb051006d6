"""The ``png`` array codec: the array header and a PNG file (ISO/IEC 15948), 8-bit or 16-bit,
grey / grey+alpha / RGB / RGBA for C = 1 / 2 / 3 / 4, ending with its ``IEND`` chunk."""

from __future__ import annotations

import struct

import numpy as np

from splatpack.spk.arrays.header import Reader
from splatpack.spk.arrays.images import Geometry, ImageCodec

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # grey, grey+alpha, RGB, RGBA


class PngCodec(ImageCodec):
    """Encoder parameter: ``level`` (zlib level, default 9)."""

    name = "png"
    params = frozenset({"level"})

    def encode_image(self, ic, img: np.ndarray, geometry: Geometry, params: dict) -> bytes:
        return ic.png_encode(img, level=int(params.get("level", 9)))

    def image_size(self, r: Reader, data: bytes, c: int, dtype: np.dtype) -> tuple[int, int]:
        ihdr = data[8:16] == b"\x00\x00\x00\x0dIHDR"
        if len(data) < 33 + len(_IEND) or data[:8] != _SIGNATURE or not ihdr:
            raise r.fail("not a PNG image")
        width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
        if (depth, colour) != (8 * dtype.itemsize, _COLOUR_TYPE[c]):
            raise r.fail(
                f"PNG bit depth {depth} / colour type {colour} does not match the array header "
                f"({8 * dtype.itemsize}-bit, {c} channels)"
            )
        if data[-len(_IEND) :] != _IEND:
            raise r.fail("PNG image does not end with its IEND chunk (truncated or trailing bytes)")
        return height, width

    def decode_image(self, ic, data: bytes, out: np.ndarray, c: int) -> np.ndarray:
        return ic.png_decode(data, out=out)
