"""The scene-codec registry: ``meta["kind"]`` → :class:`~splatpack.codecs.base.SceneCodec`.

A new scene codec is one module that defines it and one line in :data:`SCENE_CODECS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from splatpack.codecs.base import SceneCodec
from splatpack.codecs.compact import COMPACT_SCENE_CODEC
from splatpack.codecs.grid import GRID_SCENE_CODEC
from splatpack.codecs.latent import LATENT_SCENE_CODEC
from splatpack.codecs.prior.codec import PRIOR_SCENE_CODEC
from splatpack.core import GaussianSet
from splatpack.spk.arrays import ARRAY_CODECS
from splatpack.spk.container import SpkError, SpkReader

__all__ = ["SCENE_CODECS", "read_gaussians", "read_scene", "scene_codec"]

SCENE_CODECS: dict[str, SceneCodec] = {
    codec.kind: codec
    for codec in (
        GRID_SCENE_CODEC,
        COMPACT_SCENE_CODEC,
        PRIOR_SCENE_CODEC,
        LATENT_SCENE_CODEC,
    )
}


def scene_codec(kind: Any, path: str | Path | None = None) -> SceneCodec:
    """The codec of ``kind``; an unknown kind is an :class:`SpkError` naming ``path``."""
    codec = SCENE_CODECS.get(kind) if isinstance(kind, str) else None
    if codec is None:
        raise SpkError(f"unknown .spk scene kind {kind!r}", path)
    return codec


def read_scene(path: str | Path) -> tuple[SceneCodec, Any]:
    """(codec, decoded scene) of the ``.spk`` file at ``path``, decoded by the codec its meta names."""
    with SpkReader(path, known_codecs=set(ARRAY_CODECS)) as reader:
        codec = scene_codec(reader.meta.get("kind"), path)
        return codec, codec.decode(reader)


def read_gaussians(path: str | Path) -> GaussianSet:
    """The Gaussians of any ``.spk`` scene (a compact scene's colour field baked into SH)."""
    codec, decoded = read_scene(path)
    return codec.gaussians(decoded)
