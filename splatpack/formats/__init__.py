"""Scene file formats, one module each, behind :func:`load_scene` and :func:`save_scene`
(:mod:`~splatpack.formats.registry`)."""

from splatpack.formats.base import SceneFormat
from splatpack.formats.registry import (
    FORMATS,
    WRITE_FORMATS,
    detect_format,
    load_scene,
    path_size,
    save_scene,
    scene_format,
)

__all__ = [
    "FORMATS",
    "WRITE_FORMATS",
    "SceneFormat",
    "detect_format",
    "load_scene",
    "path_size",
    "save_scene",
    "scene_format",
]
