"""The array-codec registry: codec name (as stored in a ``.spk`` section table) -> :class:`ArrayCodec`,
and :func:`encode_array` / :func:`decode_array`, which look codecs up in it."""

from __future__ import annotations

import numpy as np

from splatpack.spk.arrays.ans import AnsCodec
from splatpack.spk.arrays.base import ArrayCodec, CodecError
from splatpack.spk.arrays.header import MAX_DIM
from splatpack.spk.arrays.images import ImageCodec
from splatpack.spk.arrays.jxl import JxlCodec
from splatpack.spk.arrays.png import PngCodec
from splatpack.spk.arrays.raw import DeflateCodec, RawCodec
from splatpack.spk.arrays.webp import WebpCodec

ARRAY_CODECS: dict[str, ArrayCodec] = {
    "raw": RawCodec(),
    "deflate": DeflateCodec(),
    "ans": AnsCodec(),
    "jxl": JxlCodec(),
    "png": PngCodec(),
    "webp": WebpCodec(),
}
CODECS: frozenset[str] = frozenset(ARRAY_CODECS)
#: codecs whose payload is an array header followed by an image file
IMAGE_CODECS: frozenset[str] = frozenset(n for n, c in ARRAY_CODECS.items() if isinstance(c, ImageCodec))


def _known() -> str:
    return ", ".join(sorted(ARRAY_CODECS))


def encode_array(arr: np.ndarray, codec: str, **params) -> bytes:
    """Encode ``arr`` as a section payload with ``codec`` (a name in :data:`ARRAY_CODECS`).

    ``params`` are codec settings; only the image codecs take any (``jxl``: ``bits``, ``distance``,
    ``effort``; ``png``: ``level``; ``webp``: ``level``, ``method``; see :class:`JxlCodec`,
    :class:`PngCodec` and :class:`WebpCodec` for their meaning and defaults).

    Raises :class:`CodecError` when the array does not suit the codec (e.g. ``ans`` for a
    float array or a column spanning more than 2**16 values); the caller then uses ``raw``.
    """
    arr = np.asarray(arr)
    if any(d > MAX_DIM for d in arr.shape):
        raise CodecError(f"array dimension over 2**40 in shape {arr.shape}")
    coder = ARRAY_CODECS.get(codec)
    if coder is None:
        raise CodecError(f"unknown codec '{codec}' (known: {_known()})")
    return coder.encode(arr, **params)


def decode_array(
    payload: bytes | bytearray | memoryview,
    codec: str,
    name: str = "array",
    max_elements: int | None = None,
    *,
    shape: tuple[int, ...] | None = None,
    dtype=None,
) -> np.ndarray:
    """Decode a payload written by :func:`encode_array` into a native-endian, writable array.

    ``max_elements`` bounds the element count before anything sized by the payload's header
    is allocated (default :data:`~splatpack.spk.arrays.header.DEFAULT_MAX_ELEMENTS`); a ``.spk``
    reader passes e.g. ``num_gaussians * columns``. ``shape`` / ``dtype``, when given, must equal
    the payload's (checked from its header, before anything is decoded). Every problem raises
    :class:`CodecError` naming ``name``.
    """
    expect = None
    if shape is not None or dtype is not None:
        want_dtype = None if dtype is None else np.dtype(dtype).newbyteorder("<")
        expect = (None if shape is None else tuple(int(d) for d in shape), want_dtype)
    coder = ARRAY_CODECS.get(codec)
    if coder is None:
        raise CodecError(f"array '{name}': unknown codec '{codec}' (known: {_known()})")
    return coder.decode(payload, name, max_elements, expect)
