"""Scenes for the framing tests: an asymmetric object whose "up" shows in an image (a wide blue
base with a red ball above it) plus far floaters, in a chosen up convention, and a training run
folder around it as ``splatpack train`` writes one (``point_cloud.ply`` + ``scene.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from splatpack.core import GaussianSet
from splatpack.core.sh import rgb_to_sh
from splatpack.formats.ply import save_ply

RED = (0.9, 0.1, 0.1)
BLUE = (0.1, 0.25, 0.9)
BALL_HEIGHT = 0.6  # the red ball's centre above the origin, along up
BASE_DEPTH = -0.45  # the base's middle below it


def object_gaussians(up, n_base: int = 2000, n_ball: int = 800, n_floaters: int = 60, seed: int = 0) -> GaussianSet:
    """The object with world ``up`` (a unit axis): a blue disc (radius 0.6, 0.15 thick) below the
    origin, a red ball (radius 0.25) above it, and ``n_floaters`` opaque specks 15–30 units away
    (2 % of the Gaussians: a robust framing ignores them)."""
    rng = np.random.default_rng(seed)
    up = np.asarray(up, np.float64)
    e1 = np.cross(up, [1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.cross(up, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    r, t = 0.6 * np.sqrt(rng.uniform(size=n_base)), rng.uniform(0, 2 * np.pi, n_base)
    base = (
        (r * np.cos(t))[:, None] * e1
        + (r * np.sin(t))[:, None] * e2
        + (BASE_DEPTH + rng.uniform(-0.075, 0.075, n_base))[:, None] * up
    )
    v = rng.normal(size=(n_ball, 3))
    ball = 0.25 * v / np.linalg.norm(v, axis=1, keepdims=True) * rng.uniform(size=(n_ball, 1)) ** (1 / 3)
    ball += BALL_HEIGHT * up
    v = rng.normal(size=(n_floaters, 3))
    floaters = v / np.linalg.norm(v, axis=1, keepdims=True) * rng.uniform(15, 30, (n_floaters, 1))
    means = np.concatenate([base, ball, floaters])
    rgb = np.concatenate([np.tile(BLUE, (n_base, 1)), np.tile(RED, (n_ball, 1)), np.full((n_floaters, 3), 0.6)])
    n = len(means)
    return GaussianSet.from_numpy(
        means=means,
        quats=np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)),
        scales=np.full((n, 3), np.log(0.035)),
        opacities=np.full(n, 3.0),  # α ≈ 0.95
        sh0=rgb_to_sh(np.asarray(rgb, np.float32)),
        shN=np.zeros((n, 0, 3)),
    )


def write_run(run_dir: Path, gs: GaussianSet, capture_dir: Path, fmt: str = "blender", white: bool = True) -> Path:
    """A training run folder: ``point_cloud.ply`` and ``scene.json`` with the fields the trainer
    writes (the capture's folder, format, downscale, test split, name, background)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_ply(gs, run_dir / "point_cloud.ply")
    scene = {
        "data": str(Path(capture_dir).resolve()),
        "format": fmt,
        "downscale": 1,
        "test_every": 8,
        "name": Path(capture_dir).name,
        "white_background": white,
    }
    (run_dir / "scene.json").write_text(json.dumps(scene, indent=2) + "\n")
    return run_dir
