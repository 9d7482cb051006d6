"""splatpack's Python API: read, write, compress, train and render scenes in a few calls.

>>> import splatpack
>>> metrics = splatpack.train_scene("default", out="outputs/demo", steps=300)   # the built-in scene
>>> gs = splatpack.load_scene("outputs/demo/point_cloud.ply")
>>> splatpack.compress_scene(gs, "outputs/demo/scene.spk", quality=6)           # a grid .spk
>>> splatpack.save_scene(splatpack.load_scene("outputs/demo/scene.spk"), "outputs/demo/scene.sog")

The verbs end in ``_scene`` because ``splatpack.compress``, ``splatpack.train`` and
``splatpack.render`` are the packages that implement them. Each function is a thin layer over the
modules that own the idea: :mod:`splatpack.formats`
(files), :mod:`splatpack.codecs` (scene codecs), :mod:`splatpack.train` and :mod:`splatpack.render`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.formats import load_scene, save_scene
from splatpack.render import render_image
from splatpack.train import Trainer
from splatpack.train.scenes import scene_config

__all__ = ["compress_scene", "load_scene", "render_scene", "save_scene", "train_scene"]


def compress_scene(scene: GaussianSet | str | Path, out: str | Path, quality: int | str = 6, **overrides) -> Path:
    """Compress ``scene`` (Gaussians, or any file :func:`load_scene` reads) into the grid ``.spk``
    at ``out``: PLAS-sorted attribute grids coded as images (Self-Organizing Gaussians). ``quality``
    is 0 (smallest) .. 10 (near lossless), a level name (``smallest`` .. ``max``) or ``"sog"``;
    ``overrides`` set fields of :class:`~splatpack.codecs.grid.GridCodecConfig`."""
    gs = scene if isinstance(scene, GaussianSet) else load_scene(scene)
    return save_scene(gs, out, "spk", quality=quality, **overrides)


def train_scene(
    scene: str | Path = "default",
    out: str | Path | None = None,
    preset: str | Path | None = None,
    *,
    resume: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Train on ``scene`` (``"default"``, a capture folder or a scene ``.yaml``) into ``out``
    (default ``outputs/<scene>``) with a method ``preset`` (``default``, ``compact``, ``sog``,
    ``full`` or a YAML file) and :class:`~splatpack.train.TrainConfig` ``settings`` (e.g.
    ``steps=300``, ``backend="cpu"``); returns the test metrics that ``metrics.json`` holds."""
    spec, cfg, capture = scene_config(scene, preset, settings)
    out_dir = Path(out) if out is not None else Path("outputs") / spec.name
    return Trainer(capture, cfg, out_dir).train(resume=resume)


def render_scene(
    scene: GaussianSet | str | Path,
    c2w: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    background=(0.0, 0.0, 0.0),
    backend: str = "auto",
) -> torch.Tensor:
    """The image [H, W, 3] in [0, 1] of ``scene`` from an OpenCV camera-to-world pose ``c2w`` [4, 4]
    with intrinsics ``K`` [3, 3] (:mod:`splatpack.render.camera` makes poses: ``look_at``,
    ``orbit_cameras``)."""
    gs = scene if isinstance(scene, GaussianSet) else load_scene(scene)
    return render_image(gs, np.asarray(c2w, np.float64), np.asarray(K, np.float64), width, height, background, backend)
