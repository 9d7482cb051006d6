"""The array-codec protocol: what :func:`~splatpack.spk.arrays.encode_array` and
:func:`~splatpack.spk.arrays.decode_array` look up in :data:`~splatpack.spk.arrays.ARRAY_CODECS`."""

from __future__ import annotations

from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np

from splatpack.core.errors import SplatpackError


class CodecError(SplatpackError):
    """An array cannot be encoded with the requested codec, or a payload cannot be decoded."""


#: an expected (shape, dtype) for a decoder, checked from the array header; either part may be None
Expect: TypeAlias = tuple[tuple[int, ...] | None, np.dtype | None] | None


@runtime_checkable
class ArrayCodec(Protocol):
    """One array codec: ``name`` is the codec string stored in a ``.spk`` section table."""

    name: str

    def encode(self, arr: np.ndarray, **params) -> bytes:
        """The payload of ``arr`` (array header first); :class:`CodecError` if it does not suit."""
        ...

    def decode(self, payload, name: str, max_elements: int | None, expect: Expect = None) -> np.ndarray:
        """A native-endian, writable array; every problem is a one-line :class:`CodecError` naming ``name``."""
        ...


def check_params(codec: str, params: dict, known: frozenset[str] = frozenset()) -> None:
    """Refuse encoder parameters that ``codec`` does not take."""
    if not known and params:
        raise CodecError(f"codec '{codec}' takes no parameters (got {sorted(params)})")
    unknown = set(params) - known
    if unknown:
        raise CodecError(f"unknown parameters {sorted(unknown)} for codec '{codec}' (known: {sorted(known)})")
