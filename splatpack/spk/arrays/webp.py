"""The ``webp`` array codec: the array header (dtype u8) and a lossless WebP file, one ``VP8L``
chunk; C < 3 is padded with zero channels to RGB (the padding must decode to zero), C = 4 is RGBA."""

from __future__ import annotations

import struct

import numpy as np

from splatpack.spk.arrays.base import CodecError
from splatpack.spk.arrays.header import Reader
from splatpack.spk.arrays.images import U8, Geometry, ImageCodec

_MAX_SIDE = 16383


class WebpCodec(ImageCodec):
    """Encoder parameters: ``level`` (0..100, default 100) and ``method`` (0..6, default 6), both
    trading encode time for size (always lossless)."""

    name = "webp"
    dtypes = (U8,)
    params = frozenset({"level", "method"})

    def encode_image(self, ic, img: np.ndarray, geometry: Geometry, params: dict) -> bytes:
        h, w, c = geometry
        if h > _MAX_SIDE or w > _MAX_SIDE:
            raise CodecError(f"webp images are at most {_MAX_SIDE}x{_MAX_SIDE}, not {h}x{w}")
        if c < 3:  # libwebp codes RGB(A): pad with zero channels
            img = np.concatenate([img.reshape(h, w, c), np.zeros((h, w, 3 - c), img.dtype)], axis=2)
        level, method = int(params.get("level", 100)), int(params.get("method", 6))
        return ic.webp_encode(img, level=level, lossless=True, method=method)

    def image_size(self, r: Reader, data: bytes, c: int, dtype: np.dtype) -> tuple[int, int]:
        if len(data) < 25 or data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8L" or data[20] != 0x2F:
            raise r.fail("not a lossless WebP image (one VP8L chunk expected)")
        riff, chunk = struct.unpack_from("<I", data, 4)[0], struct.unpack_from("<I", data, 16)[0]
        if riff + 8 != len(data) or 20 + chunk + (chunk & 1) != len(data):
            raise r.fail("WebP sizes do not match the payload (truncated or trailing bytes)")
        bits = struct.unpack_from("<I", data, 21)[0]
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1

    def decode_image(self, ic, data: bytes, out: np.ndarray, c: int) -> np.ndarray:
        return ic.webp_decode(data, hasalpha=c == 4, out=out)

    def decoded_channels(self, c: int) -> int:
        return max(c, 3)

    def unpad(self, r: Reader, img: np.ndarray, c: int) -> np.ndarray:
        if self.decoded_channels(c) > c:
            if img[..., c:].any():
                raise r.fail("WebP padding channels are not zero (corrupt)")
            img = img[..., :c]
        return img
