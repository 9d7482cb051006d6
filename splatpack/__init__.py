"""splatpack: train, compress, export and view compact 3D Gaussian Splatting scenes.

The public API (:mod:`splatpack.api`): :func:`load_scene`, :func:`save_scene`,
:func:`compress_scene`, :func:`train_scene`, :func:`render_scene`, and the :class:`GaussianSet` they
pass around. Layers, each
importing only those below it: ``core`` ← ``render`` / ``captures`` / ``metrics`` ← ``compress``
← ``spk`` ← ``codecs`` ← ``formats`` ← ``train`` ← ``api`` / ``view`` ← ``apps`` (the CLI).

The API's names are bound on first use (PEP 562), so that importing one layer
(``splatpack.core``, say) does not import every layer above it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = [
    "GaussianSet",
    "SplatpackError",
    "__version__",
    "compress_scene",
    "load_scene",
    "render_scene",
    "save_scene",
    "train_scene",
]

_PUBLIC = {
    "compress_scene": "splatpack.api",
    "load_scene": "splatpack.api",
    "render_scene": "splatpack.api",
    "save_scene": "splatpack.api",
    "train_scene": "splatpack.api",
    "GaussianSet": "splatpack.core",
    "SplatpackError": "splatpack.core",
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'splatpack' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
