"""A 360° object capture without SfM points, made from the built-in synthetic object.

What a phone walk-around of an object gives after pose estimation, in LLFF's layout: ``n``
photos on a spiral around the object (two turns, elevation −5° to 55°, radius 4, aimed at the
object with a few centimetres of hand jitter), the object on a plain backdrop, with the poses
and their depth bounds but no points::

    out_dir/
        poses_bounds.npy     N × 17: [R | t | (h, w, f)] in LLFF axes [down, right, back], near, far
        images/img_000.png … RGB, the object composited on ``backdrop``
        masks/img_000.png …  8-bit object masks (the renderer's coverage), when ``masks``

Rendering is :func:`splatpack.captures.synthetic.render_view` (ray-cast, 2×2 supersampled).
The near/far bounds are the object's bounding sphere (radius 1.2) along each camera's axis, as
LLFF derives them from the SfM points' depths. Read with :func:`splatpack.captures.load_capture`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from splatpack.captures.synthetic import CAMERA_ANGLE_X, CAMERA_RADIUS, opengl_look_at, render_view

__all__ = ["make_object_capture", "spiral_positions"]

_OBJECT_RADIUS = 1.2


def spiral_positions(n: int, radius: float = CAMERA_RADIUS, turns: float = 2.0) -> np.ndarray:
    """``n`` camera centres [n, 3] on a spiral about the z axis: ``turns`` turns while the
    elevation rises from −5° to 55° (a walk-around at two heights)."""
    t = (np.arange(n) + 0.5) / n
    az = 2 * math.pi * turns * t
    el = np.radians(-5.0 + 60.0 * t)
    return radius * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)


def make_object_capture(
    out_dir: Path,
    n: int = 48,
    size: int = 200,
    masks: bool = True,
    backdrop: tuple[float, float, float] = (0.78, 0.76, 0.72),
    seed: int = 0,
) -> Path:
    """Write the capture (``n`` views of ``size``² pixels) into ``out_dir`` and return it."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    if masks:
        (out_dir / "masks").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    focal = 0.5 * size / math.tan(0.5 * CAMERA_ANGLE_X)
    rows = []
    for k, eye in enumerate(spiral_positions(n)):
        c2w = opengl_look_at(eye, rng.normal(0.0, 0.05, 3))  # hand-held: not aimed exactly
        rgba = render_view(c2w, size, size).astype(np.float64) / 255.0
        a = rgba[..., 3:]
        rgb = rgba[..., :3] * a + np.asarray(backdrop) * (1 - a)
        name = f"img_{k:03d}.png"
        Image.fromarray(np.round(rgb * 255).astype(np.uint8), "RGB").save(out_dir / "images" / name)
        if masks:
            Image.fromarray(np.round(a[..., 0] * 255).astype(np.uint8), "L").save(out_dir / "masks" / name)
        # OpenGL [right, up, back] → LLFF [down, right, back]
        R = np.stack([-c2w[:3, 1], c2w[:3, 0], c2w[:3, 2]], axis=1)
        depth = float(np.dot(-c2w[:3, 2], -eye))  # the object's centre along the viewing axis
        hwf = np.array([[size], [size], [focal]], dtype=np.float64)
        pose = np.concatenate([R, eye[:, None], hwf], axis=1)
        rows.append(np.concatenate([pose.ravel(), [depth - _OBJECT_RADIUS, depth + _OBJECT_RADIUS]]))
    np.save(out_dir / "poses_bounds.npy", np.stack(rows))
    return out_dir
