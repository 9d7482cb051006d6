"""Data types shared by every capture reader.

Conventions (those of gsplat's COLMAP parser and nerfstudio's dataparsers):

* ``camtoworld`` is a 4×4 camera-to-world matrix in the **OpenCV** camera convention
  (x right, y down, z forward). Readers of OpenGL/Blender poses (x right, y up, z back)
  convert by right-multiplying with ``diag(1, -1, -1, 1)``.
* ``K`` is the 3×3 pinhole intrinsics matrix at the frame's ``width × height``, i.e. after the
  downscale factor has been applied; pixel centres are at integer + 0.5.
* A frame whose camera has lens distortion carries it in ``distortion`` and the image is
  undistorted to the pinhole ``K`` when loaded (:func:`splatpack.captures.images.load_image`).
* ``mask_path`` is the frame's object mask when the capture ships one (``masks/`` beside the
  images, nerfstudio's ``mask_path``), read by :func:`splatpack.captures.masks.load_mask`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Distortion:
    """Lens distortion of the source image, in COLMAP's / OpenCV's parameterisation.

    ``model`` is the COLMAP model name (``SIMPLE_RADIAL``, ``RADIAL``, ``OPENCV``); ``params``
    holds ``k1, k2, p1, p2`` (missing ones zero). ``K_src`` is the intrinsics of the
    distorted source image at the frame's resolution.
    """

    model: str
    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    K_src: np.ndarray | None = None


@dataclass
class Frame:
    """One posed image of a capture."""

    image_path: Path
    camtoworld: np.ndarray  # [4, 4] float64, OpenCV convention
    K: np.ndarray  # [3, 3] float64, pinhole intrinsics at (width, height)
    width: int
    height: int
    distortion: Distortion | None = None
    mask_path: Path | None = None  # object mask (white = object), see splatpack.captures.masks
    near_far: tuple[float, float] | None = None  # scene depth bounds along the axis (LLFF), when known
    image: np.ndarray | None = None  # float32 [height, width, 3] in [0, 1] held in memory (renders, no file)

    @property
    def name(self) -> str:
        return self.image_path.name

    def viewmat(self) -> np.ndarray:
        """World-to-camera 4×4 matrix (the ``viewmats`` argument of gsplat)."""
        return np.linalg.inv(self.camtoworld)


@dataclass
class Capture:
    """A multi-view capture: posed train/test frames and optional SfM points."""

    name: str
    format: str  # "blender" | "nerfstudio" | "llff" | "colmap" | "synthetic"
    root: Path
    train: list[Frame]
    test: list[Frame]
    points: np.ndarray | None = None  # [P, 3] float32 SfM points (world)
    point_colors: np.ndarray | None = None  # [P, 3] uint8
    white_background: bool = False  # RGBA images are composited on white (Blender)
    near_far: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def frames(self) -> list[Frame]:
        return self.train + self.test

    def camera_centers(self) -> np.ndarray:
        return np.stack([f.camtoworld[:3, 3] for f in self.frames])

    def scene_scale(self) -> float:
        """Radius of the camera rig around its centre, times 1.1 (gsplat's ``scene_scale``)."""
        c = self.camera_centers()
        return float(np.linalg.norm(c - c.mean(0), axis=1).max() * 1.1)
