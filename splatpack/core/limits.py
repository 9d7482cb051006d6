"""How many Gaussians a reader may decode: one ceiling for every format, and a plausibility test
of a count against the bytes that claim to hold it.

Every reader calls :func:`check_gaussians` with the count a file claims *before* it allocates
anything sized by that count. Two tests:

* **the ceiling**: at most :func:`max_gaussians` Gaussians (:data:`DEFAULT_MAX_GAUSSIANS`, or the
  value of ``--max-gaussians`` / ``load_scene(..., max_gaussians=N)``); the refusal gives the
  memory that decoding would take (:func:`decoded_bytes`);
* **plausibility**: a compressed format declares how many Gaussians one byte of it can hold at
  most (a bound on what a real encoder writes, with a wide margin over degenerate scenes such as
  a regular lattice of identical Gaussians); a count above ``max(ALWAYS_PLAUSIBLE, bytes ×
  per_byte)`` is a decompression bomb and is refused. An explicit ceiling vouches for the file:
  inside :func:`gaussian_limit` with a number, only the ceiling applies.

The ceiling is held in a :class:`~contextvars.ContextVar`: a thread started elsewhere sees the
default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from splatpack.core.errors import SplatpackError

__all__ = [
    "ALWAYS_PLAUSIBLE",
    "DEFAULT_MAX_GAUSSIANS",
    "GaussianLimit",
    "check_gaussians",
    "current_limit",
    "decoded_bytes",
    "gaussian_limit",
    "max_gaussians",
]

#: the default ceiling (:func:`decoded_bytes` of this many SH-degree-3 Gaussians fits a 24 GB machine)
DEFAULT_MAX_GAUSSIANS = 20_000_000
#: a count this small is decoded whatever the size of the file (its memory is small)
ALWAYS_PLAUSIBLE = 1 << 20
#: peak memory of a decode over the size of the decoded Gaussians (float64 temporaries, copies)
DECODE_OVERHEAD = 4
FLAG = "--max-gaussians"


@dataclass(frozen=True)
class GaussianLimit:
    """The ceiling in force; ``explicit`` when the caller set it (it then vouches for plausibility)."""

    max_gaussians: int = DEFAULT_MAX_GAUSSIANS
    explicit: bool = False


DEFAULT_LIMIT = GaussianLimit()
_LIMIT: ContextVar[GaussianLimit] = ContextVar("splatpack_gaussian_limit", default=DEFAULT_LIMIT)


def current_limit() -> GaussianLimit:
    """The ceiling readers apply now."""
    return _LIMIT.get()


def max_gaussians() -> int:
    """The most Gaussians a reader decodes now."""
    return _LIMIT.get().max_gaussians


@contextmanager
def gaussian_limit(limit: int | None) -> Iterator[GaussianLimit]:
    """Within the block, readers decode at most ``limit`` Gaussians and trust any count up to it
    (None: the ceiling in force stays, plausibility included)."""
    if limit is None:
        yield _LIMIT.get()
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise SplatpackError(f"the Gaussian limit must be an integer ≥ 0, got {limit!r}")
    token = _LIMIT.set(GaussianLimit(limit, explicit=True))
    try:
        yield _LIMIT.get()
    finally:
        _LIMIT.reset(token)


def decoded_bytes(n: int, sh_degree: int = 3) -> int:
    """Estimated peak memory (bytes) of decoding ``n`` Gaussians of ``sh_degree``: their float32
    parameters (14 + 3·K each) times :data:`DECODE_OVERHEAD`."""
    floats = 14 + 3 * ((sh_degree + 1) ** 2 - 1)
    return n * 4 * floats * DECODE_OVERHEAD


def _gb(nbytes: int) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.0f} MB"


def check_gaussians(
    n: int,
    path: str | Path | None,
    *,
    file_bytes: int | None = None,
    per_byte: float | None = None,
    sh_degree: int = 3,
    bytes_of: str = "",
    error: type[SplatpackError] = SplatpackError,
) -> int:
    """``n`` if a file at ``path`` may be decoded with ``n`` Gaussians, else a one-line
    :class:`SplatpackError` naming the limit and ``--max-gaussians``. With ``file_bytes`` and
    ``per_byte`` (the most Gaussians one byte of the format holds), also the plausibility test.
    ``bytes_of`` says what ``file_bytes`` counts when not the whole file (e.g. ``"of payload"``);
    ``error``: the :class:`SplatpackError` subclass to raise."""
    limit = _LIMIT.get()
    if n > limit.max_gaussians:
        raise error(
            f"claims {n:,} Gaussians (about {_gb(decoded_bytes(n, sh_degree))} to decode), more than the limit "
            f"of {limit.max_gaussians:,}; if it is genuine, raise {FLAG}",
            path,
        )
    if file_bytes is not None and per_byte is not None and not limit.explicit:
        most = max(ALWAYS_PLAUSIBLE, int(file_bytes * per_byte))
        if n > most:
            raise error(
                f"claims {n:,} Gaussians in {file_bytes:,} bytes{' ' + bytes_of if bytes_of else ''}, "
                "more than such a file can hold "
                f"(at most {most:,}); if it is genuine, set {FLAG} {n} or more",
                path,
            )
    return n
