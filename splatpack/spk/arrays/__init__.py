"""Array codecs for ``.spk`` section payloads: ``raw``, ``deflate`` (:mod:`.raw`), ``ans``
(:mod:`.ans`) and the image codecs ``jxl``, ``png`` and ``webp`` (:mod:`.images`, :mod:`.jxl`,
:mod:`.png`, :mod:`.webp`).

Every payload starts with the same array header (:mod:`.header`); each codec's module specifies
what follows it. Codecs are looked up by name in :data:`ARRAY_CODECS` (:mod:`.registry`); an
:class:`ArrayCodec` added there is found by :func:`encode_array`, :func:`decode_array` and a
:class:`~splatpack.spk.container.SpkReader` opened with ``known_codecs=ARRAY_CODECS``.

Every decode error is a :class:`CodecError` with a one-line message naming the array.
"""

from splatpack.spk.arrays.ans import ANS_DTYPES
from splatpack.spk.arrays.base import ArrayCodec, CodecError
from splatpack.spk.arrays.header import DEFAULT_MAX_ELEMENTS, DTYPE_CODES
from splatpack.spk.arrays.registry import ARRAY_CODECS, CODECS, IMAGE_CODECS, decode_array, encode_array

__all__ = [
    "ANS_DTYPES",
    "ARRAY_CODECS",
    "CODECS",
    "DEFAULT_MAX_ELEMENTS",
    "DTYPE_CODES",
    "IMAGE_CODECS",
    "ArrayCodec",
    "CodecError",
    "decode_array",
    "encode_array",
]
