"""What a scene file format is: the :class:`SceneFormat` record every format module defines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from splatpack.core import GaussianSet

__all__ = ["SceneFormat"]


@dataclass(frozen=True)
class SceneFormat:
    """One file type: its ``name``, the ``extensions`` that pick it for writing, ``sniff(head,
    path)`` (does a file whose first bytes are ``head`` hold this format? ``head`` is empty for a
    folder), ``read(path) → GaussianSet`` and ``write(gs, path, **options) → path`` (None when the
    format is read-only)."""

    name: str
    extensions: tuple[str, ...]
    sniff: Callable[[bytes, Path], bool]
    read: Callable[[Path], GaussianSet]
    write: Callable[..., Path] | None = None
