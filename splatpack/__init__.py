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
import os
from typing import Any

# OpenMP threads that finished a parallel region sleep instead of spinning (libgomp reads this when
# it loads: numba's kernels load it on first use). PLAS runs hundreds of short parallel passes,
# and on a machine whose cores are busy the spinning of idle threads made it several times
# slower (benchmarks/encode_speed.py). Set either variable to keep libgomp's default.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"

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
