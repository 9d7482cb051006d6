"""Grid scenes behind the scene-codec seam (:class:`~splatpack.codecs.base.SceneCodec`,
``kind: sog-grid``), and the file-level helpers :func:`write_grid_scene` / :func:`read_grid_scene`."""

from __future__ import annotations

from pathlib import Path

from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid.config import FORMAT_KIND, GridCodecConfig
from splatpack.codecs.grid.decode import decode_grid_scene
from splatpack.codecs.grid.encode import encode_grid_scene
from splatpack.core import GaussianSet
from splatpack.core.validate import validate_gaussians
from splatpack.spk.arrays import CODECS
from splatpack.spk.container import SpkReader

__all__ = ["GRID_SCENE_CODEC", "GridSceneCodec", "read_grid_scene", "write_grid_scene"]


class GridSceneCodec:
    """Grid scenes as a :class:`~splatpack.codecs.base.SceneCodec` (``kind: sog-grid``)."""

    kind = FORMAT_KIND

    def encode(
        self, gs, config: GridCodecConfig | None = None, grid_index=None, shn_codebooks=None, drops=None, ranges=None
    ) -> EncodedScene:
        """:func:`encode_grid_scene` of ``gs`` (a given PLAS ``grid_index``, trained SH-rest R-VQ
        ``shn_codebooks``, per-Gaussian ``drops`` and fixed ``ranges`` are optional), after
        :func:`~splatpack.core.validate.validate_gaussians`."""
        validate_gaussians(gs)
        sections, meta = encode_grid_scene(gs, config, grid_index, shn_codebooks, drops=drops, ranges=ranges)
        return EncodedScene(sections, meta, len(gs))

    def decode(self, reader) -> GaussianSet:
        return decode_grid_scene(reader)

    def gaussians(self, decoded: GaussianSet) -> GaussianSet:
        return decoded


GRID_SCENE_CODEC = GridSceneCodec()


def write_grid_scene(
    path: str | Path,
    gs,
    cfg: GridCodecConfig | None = None,
    grid_index=None,
    shn_codebooks=None,
    drops=None,
    ranges=None,
) -> int:
    """Encode ``gs`` and write it to ``path`` atomically; returns the file size in bytes. ``gs`` is
    checked first (:func:`~splatpack.core.validate.validate_gaussians`), the error naming ``path``."""
    validate_gaussians(gs, path)
    return GRID_SCENE_CODEC.encode(gs, cfg, grid_index, shn_codebooks, drops, ranges).write(path)


def read_grid_scene(path: str | Path) -> GaussianSet:
    """Read a grid ``.spk`` back into a :class:`~splatpack.core.GaussianSet` (:func:`decode_grid_scene`)."""
    with SpkReader(path, known_codecs=set(CODECS)) as r:
        return decode_grid_scene(r)
