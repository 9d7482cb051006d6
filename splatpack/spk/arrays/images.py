"""The shared base of the image codecs (``jxl``, ``png``, ``webp``).

An 8- or 16-bit image [H, W] or [H, W, C] (C = 1..4, H, W >= 1) is coded with libjxl / libpng /
libwebp through ``imagecodecs``. The payload is the array header (dtype u8 or u16; ``webp``: u8
only) followed by exactly one image file; each codec's module says which.

The image's own width and height (and for PNG bit depth and colour type) must equal the array
header's. A decoder checks this from the image header *before* decoding, so a forged image
header cannot make an image library allocate more than the array header declares (which is
bounded by ``max_elements``).
"""

from __future__ import annotations

import numpy as np

from splatpack.core.cstderr import c_stderr_captured
from splatpack.spk.arrays.base import CodecError, Expect, check_params
from splatpack.spk.arrays.header import Reader, array_header, dtype_code, native, read_array_header

U8, U16 = np.dtype("<u1"), np.dtype("<u2")

#: (H, W, C) of an image
Geometry = tuple[int, int, int]


def imagecodecs_module(fail=CodecError):
    """The ``imagecodecs`` module, or ``fail(message)`` raised when it is not installed."""
    try:
        import imagecodecs
    except ImportError:
        raise fail("the jxl, png and webp codecs need the 'imagecodecs' package (pip install imagecodecs)") from None
    return imagecodecs


def image_geometry(shape: tuple[int, ...]) -> Geometry | None:
    """(H, W, C) of an image array shape [H, W] or [H, W, C] (C in 1..4, H, W >= 1), else None."""
    if len(shape) == 2:
        h, w, c = *shape, 1
    elif len(shape) == 3:
        h, w, c = shape
    else:
        return None
    return (h, w, c) if h >= 1 and w >= 1 and 1 <= c <= 4 else None


class ImageCodec:
    """An array codec whose payload is the array header and one image file.

    Subclasses set ``name``, ``dtypes`` (the array dtypes they code) and ``params`` (the encoder
    parameters they take) and supply :meth:`encode_image`, :meth:`image_size` (the image header
    parser) and :meth:`decode_image`.
    """

    name: str
    dtypes: tuple[np.dtype, ...] = (U8, U16)
    params: frozenset[str] = frozenset()

    # -- per codec

    def encode_image(self, ic, img: np.ndarray, geometry: Geometry, params: dict) -> bytes:
        """The image file of ``img`` (native-endian, [H, W] for C = 1, else [H, W, C])."""
        raise NotImplementedError

    def image_size(self, r: Reader, data: bytes, c: int, dtype: np.dtype) -> tuple[int, int]:
        """(height, width) from the image file's own header (without decoding it); refuses a file of
        another kind or layout than the array header (``c`` channels of ``dtype``) with ``r.fail``."""
        raise NotImplementedError

    def decode_image(self, ic, data: bytes, out: np.ndarray, c: int) -> np.ndarray:
        """Decode ``data`` into ``out`` (allocated with :meth:`decoded_channels` channels)."""
        raise NotImplementedError

    def decoded_channels(self, c: int) -> int:
        """The channels the image library decodes a ``c``-channel image to."""
        return c

    def unpad(self, r: Reader, img: np.ndarray, c: int) -> np.ndarray:
        """The ``c`` channels of a decoded image (see :meth:`decoded_channels`)."""
        return img

    # -- the ArrayCodec protocol

    def encode(self, arr: np.ndarray, **params) -> bytes:
        dtype = native(arr.dtype)
        if dtype not in self.dtypes:
            kinds = " or ".join(str(native(d)) for d in self.dtypes)
            raise CodecError(f"the {self.name} codec codes {kinds} images, not {dtype}")
        geometry = image_geometry(arr.shape)
        if geometry is None:
            raise CodecError(
                f"the {self.name} codec codes [H, W] or [H, W, C] images (C = 1..4, H, W >= 1), not shape {arr.shape}"
            )
        check_params(self.name, params, self.params)
        h, w, c = geometry
        img = np.ascontiguousarray(arr, dtype=native(dtype)).reshape((h, w, c) if c > 1 else (h, w))
        data = self.encode_image(imagecodecs_module(), img, geometry, params)
        return array_header(dtype_code(dtype), arr.shape) + bytes(data)

    def decode(self, payload, name: str, max_elements: int | None, expect: Expect = None) -> np.ndarray:
        r = Reader(payload, name, self.name)
        dtype, shape, _ = read_array_header(r, max_elements, expect)
        if dtype not in self.dtypes:
            raise r.fail(f"dtype {native(dtype)} is not allowed in a {self.name} payload")
        geometry = image_geometry(shape)
        if geometry is None:
            raise r.fail(f"shape {shape} is not an image ([H, W] or [H, W, C], C = 1..4, H, W >= 1)")
        h, w, c = geometry
        data = bytes(r.data[r.pos :])
        got = self.image_size(r, data, c, dtype)  # before decoding: the image header is unbounded
        if got != (h, w):
            raise r.fail(f"image is {got[0]}x{got[1]}, the array header says {h}x{w}")
        ic = imagecodecs_module(r.fail)
        n_out = self.decoded_channels(c)
        out = np.empty((h, w, n_out) if n_out > 1 else (h, w), native(dtype))
        try:
            with c_stderr_captured():  # libpng prints warnings on corrupt streams: the error says it
                img = self.decode_image(ic, data, out, c)
        except MemoryError:
            raise r.fail("image too large to decode") from None
        except Exception as exc:  # the libraries' own errors (corrupt stream, wrong layout, ...)
            raise r.fail(f"corrupt image ({type(exc).__name__}: {exc})") from None
        img = np.asarray(img)
        if img.shape != out.shape or img.dtype != out.dtype:
            raise r.fail(f"image decodes to {img.shape} {img.dtype}, expected {out.shape} {out.dtype}")
        return np.ascontiguousarray(self.unpad(r, img, c)).reshape(shape)
