"""Scene codecs: how a scene is coded into the sections of a ``.spk`` file, behind one registry.

* :mod:`~splatpack.codecs.grid` — Self-Organizing Gaussians' sorted attribute grids as images
  (``kind: sog-grid``; ``splatpack compress``, the full preset);
* :mod:`~splatpack.codecs.compact` — Compact-3DGS's streams (``kind: compact-3dgs``).

:func:`read_scene` opens any ``.spk`` and decodes it with the codec its meta names;
:mod:`~splatpack.codecs.storage` tells the bytes per attribute of any scene kind.
"""

from splatpack.codecs.base import EncodedScene, SceneCodec
from splatpack.codecs.registry import SCENE_CODECS, read_gaussians, read_scene, scene_codec

__all__ = ["SCENE_CODECS", "EncodedScene", "SceneCodec", "read_gaussians", "read_scene", "scene_codec"]
