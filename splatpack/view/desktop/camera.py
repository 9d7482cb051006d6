"""The desktop viewer's interactive camera: orbit, pan, zoom and fly about a world up axis."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from splatpack.render.camera import look_at
from splatpack.view.framing import Framing, frame_points

UP_AXES = [np.array(v, np.float64) for v in ((0, -1, 0), (0, 0, 1), (0, 1, 0), (0, 0, -1), (1, 0, 0), (-1, 0, 0))]


@dataclass
class OrbitCamera:
    """A camera orbiting ``target`` at ``distance``, at azimuth ``yaw`` and elevation
    ``pitch`` (radians) about the world ``up`` axis, which points up on screen. The default
    up, −y, is that of COLMAP / INRIA scenes; the viewer's U key cycles the other axes."""

    target: np.ndarray
    distance: float
    yaw: float = 0.0
    pitch: float = math.radians(15.0)
    up: np.ndarray = field(default_factory=lambda: UP_AXES[0].copy())
    fov_degrees: float = 60.0

    @classmethod
    def from_framing(cls, framing: Framing) -> OrbitCamera:
        """The orbit camera at a :class:`~splatpack.view.framing.Framing`'s start view: its
        look-at point, distance, direction (as yaw and pitch about its up) and field of view."""
        cam = cls(np.array(framing.centre, np.float64), max(framing.distance, 1e-6), fov_degrees=framing.fov_degrees)
        cam.up = np.array(framing.up, np.float64)
        d = (framing.eye - framing.centre) / cam.distance
        e1, e2 = cam._basis()
        cam.yaw = math.atan2(float(d @ e2), float(d @ e1))
        cam.pitch = float(np.clip(math.asin(np.clip(d @ cam.up, -1.0, 1.0)), -math.radians(89.0), math.radians(89.0)))
        return cam

    @classmethod
    def framing(cls, means: np.ndarray, fov_degrees: float = 60.0, up: np.ndarray | None = None, opacities=None):
        """Frames the Gaussians (:func:`~splatpack.view.framing.frame_points`: their weighted
        median, the 5–95 % box fitted in the view) with world ``up`` (default −y)."""
        return cls.from_framing(frame_points(means, opacities, UP_AXES[0] if up is None else up, fov_degrees))

    def _basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Two unit vectors spanning the plane perpendicular to ``up``."""
        ref = np.array([1.0, 0.0, 0.0]) if abs(self.up[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
        e1 = ref - (ref @ self.up) * self.up
        e1 /= np.linalg.norm(e1)
        return e1, np.cross(self.up, e1)

    @property
    def eye(self) -> np.ndarray:
        e1, e2 = self._basis()
        d = math.cos(self.pitch) * (math.cos(self.yaw) * e1 + math.sin(self.yaw) * e2) + math.sin(self.pitch) * self.up
        return self.target + self.distance * d

    def c2w(self) -> np.ndarray:
        """OpenCV camera-to-world: z towards the target, y (screen down) along −up."""
        return look_at(self.eye, self.target, self.up)  # |pitch| ≤ 89°: never parallel

    def intrinsics(self, width: int, height: int) -> np.ndarray:
        f = 0.5 * height / math.tan(math.radians(self.fov_degrees) / 2)
        return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])

    def orbit(self, d_yaw: float, d_pitch: float) -> None:
        self.yaw += d_yaw
        self.pitch = float(np.clip(self.pitch + d_pitch, -math.radians(89.0), math.radians(89.0)))

    def pan(self, dx_pixels: float, dy_pixels: float, focal: float) -> None:
        """Moves the target with the scene under the cursor (pixels at the target's depth)."""
        c2w = self.c2w()
        s = self.distance / focal
        self.target = self.target - s * dx_pixels * c2w[:3, 0] - s * dy_pixels * c2w[:3, 1]

    def zoom(self, steps: float) -> None:
        self.distance *= 0.9**steps

    def fly(self, forward: float, right: float, rise: float) -> None:
        """Translates eye and target together along the view axes (world units)."""
        c2w = self.c2w()
        self.target = self.target + forward * c2w[:3, 2] + right * c2w[:3, 0] - rise * c2w[:3, 1]
