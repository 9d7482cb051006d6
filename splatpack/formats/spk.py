"""``.spk`` files as a scene format: read through the scene codec the file's meta names
(:mod:`splatpack.codecs`), written as a grid scene (:mod:`splatpack.codecs.grid`) at a quality."""

from __future__ import annotations

from pathlib import Path

from splatpack.codecs import read_gaussians
from splatpack.codecs.grid import GRID_SCENE_CODEC, GridCodecConfig
from splatpack.core import GaussianSet
from splatpack.formats.base import SceneFormat
from splatpack.spk.container import MAGIC

__all__ = ["FORMAT", "write_spk_scene"]


def write_spk_scene(gs: GaussianSet, path: str | Path, quality: int | str = 6, **overrides) -> Path:
    """Compress ``gs`` into a grid ``.spk`` at ``quality`` (0..10, a level name or ``sog``;
    ``overrides`` replace settings of :class:`~splatpack.codecs.grid.GridCodecConfig`)."""
    GRID_SCENE_CODEC.encode(gs, GridCodecConfig.from_quality(quality, **overrides)).write(path)
    return Path(path)


FORMAT = SceneFormat(
    name="spk",
    extensions=(".spk",),
    sniff=lambda head, path: head.startswith(MAGIC),
    read=read_gaussians,
    write=write_spk_scene,
)
