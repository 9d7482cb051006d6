"""What every scene codec is: the :class:`SceneCodec` protocol and the :class:`EncodedScene` it
produces.

A scene codec turns a scene into the named sections and the meta of a ``.spk`` file
(:mod:`splatpack.spk`) and back. The file's ``meta["kind"]`` names the codec that wrote it, so a
reader picks the decoder from the file (:func:`splatpack.codecs.read_scene`). A codec decodes
into its own scene type (a :class:`~splatpack.core.GaussianSet` for grid scenes, a
``CompactScene`` with a colour field for compact ones) and says how that becomes plain
Gaussians (:meth:`SceneCodec.gaussians`), which is what every format writer takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from splatpack.core import GaussianSet
from splatpack.spk.container import Section, SpkReader, write_spk

__all__ = ["EncodedScene", "SceneCodec"]


@dataclass
class EncodedScene:
    """A coded scene: the ``.spk`` sections, the meta (with ``kind``) and the Gaussian count."""

    sections: list[Section]
    meta: dict[str, Any]
    num_gaussians: int

    def write(self, path: str | Path) -> int:
        """Write the ``.spk`` file atomically; returns its size in bytes."""
        return write_spk(path, self.sections, meta=self.meta, num_gaussians=self.num_gaussians)


class SceneCodec(Protocol):
    """A way of coding a scene into ``.spk`` sections (the seam new entropy models plug into)."""

    #: ``meta["kind"]`` of the files this codec writes and reads
    kind: str

    def encode(self, scene: Any, config: Any = None) -> EncodedScene:
        """Code ``scene`` (the codec's input type) with ``config`` (its settings)."""
        ...

    def decode(self, reader: SpkReader) -> Any:
        """The scene in an open file whose ``meta["kind"]`` is :attr:`kind`; every problem in
        the file raises :class:`~splatpack.spk.SpkError`."""
        ...

    def gaussians(self, decoded: Any) -> GaussianSet:
        """A decoded scene as plain Gaussians (what every format writer takes)."""
        ...
