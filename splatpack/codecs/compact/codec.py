"""Compact-3DGS scenes as a :class:`~splatpack.codecs.base.SceneCodec` (``kind: compact-3dgs``),
and the file helpers over it."""

from __future__ import annotations

from pathlib import Path

from splatpack.codecs.base import EncodedScene
from splatpack.codecs.compact.config import FORMAT_KIND
from splatpack.codecs.compact.decode import decode_compact, dequantize
from splatpack.codecs.compact.scene import CompactScene, compact_to_gaussians
from splatpack.codecs.compact.streams import CompactCode, compact_sections
from splatpack.core import GaussianSet
from splatpack.spk.arrays import CODECS
from splatpack.spk.container import SpkReader

__all__ = ["COMPACT_SCENE_CODEC", "CompactSceneCodec", "read_compact", "write_compact"]


class CompactSceneCodec:
    """Compact-3DGS scenes as a :class:`~splatpack.codecs.base.SceneCodec` (``kind: compact-3dgs``)."""

    kind = FORMAT_KIND

    def encode(self, code: CompactCode, config=None) -> EncodedScene:
        """The sections of post-processed streams (:func:`~splatpack.codecs.compact.quantize_compact`
        makes them)."""
        return EncodedScene(compact_sections(code), code.meta, code.num_gaussians)

    def decode(self, reader: SpkReader) -> CompactScene:
        return dequantize(decode_compact(reader))

    def gaussians(self, decoded: CompactScene) -> GaussianSet:
        return compact_to_gaussians(decoded)


COMPACT_SCENE_CODEC = CompactSceneCodec()


def write_compact(path: str | Path, code: CompactCode) -> int:
    """Write ``path`` (atomically); returns its size in bytes."""
    return COMPACT_SCENE_CODEC.encode(code).write(path)


def read_compact(path: str | Path) -> CompactCode:
    """Read a compact ``.spk`` back into its streams (:func:`decode_compact`)."""
    with SpkReader(path, known_codecs=set(CODECS)) as r:
        return decode_compact(r)
