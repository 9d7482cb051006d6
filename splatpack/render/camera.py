"""Cameras: ``look_at``, framing a set of Gaussians, and camera paths (orbits and spirals).

Every pose is an OpenCV camera-to-world matrix [4, 4] (x right, y down, z forward), as
:class:`~splatpack.captures.Frame` and the rasterizer use. Paths: for captures whose cameras
surround the scene (object captures) a 360° orbit around the point the cameras look at; for
forward-facing captures (LLFF) NeRF's spiral path (``render_path_spiral``) around the average pose.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["camera_path", "focus_point", "frame_gaussians", "look_at", "orbit_cameras"]


def focus_point(c2ws: np.ndarray) -> np.ndarray:
    """Least-squares point closest to all optical axes (OpenCV: the +z column)."""
    A, b = np.zeros((3, 3)), np.zeros(3)
    for m in c2ws:
        d = m[:3, 2] / np.linalg.norm(m[:3, 2])
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ m[:3, 3]
    return np.linalg.lstsq(A, b, rcond=None)[0]


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world looking from ``eye`` at ``target`` with world ``up`` at the top of
    the screen: x (right) = forward × up, y (down) = forward × right."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-8:
        x = np.cross(z, np.array([1.0, 0.0, 0.0]))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
    return m


def frame_gaussians(means: np.ndarray, fov_degrees: float) -> tuple[np.ndarray, float]:
    """(centre, distance): the median of ``means`` [N, 3] and how far from it a camera with that
    field of view must stand to see the central 80 % of them."""
    m = np.asarray(means, dtype=np.float64)
    centre = np.median(m, axis=0)
    radius = float(np.percentile(np.linalg.norm(m - centre, axis=1), 80))
    return centre, max(radius, 1e-3) / math.sin(math.radians(fov_degrees) / 2) * 1.05


def camera_path(c2ws: np.ndarray, n: int) -> np.ndarray:
    """An orbit (cameras all around) or a spiral (forward-facing) through ``n`` poses."""
    centre = focus_point(c2ws)
    up = -c2ws[:, :3, 1].mean(0)
    up = up / np.linalg.norm(up)
    offsets = c2ws[:, :3, 3] - centre
    dirs = offsets / np.linalg.norm(offsets, axis=1, keepdims=True)
    spread = np.degrees(np.arccos(np.clip(dirs @ dirs.mean(0) / np.linalg.norm(dirs.mean(0)), -1, 1))).max()
    if spread > 60:  # cameras around the scene: orbit at the mean elevation and distance
        radius = np.linalg.norm(offsets, axis=1).mean()
        height = float(np.mean(offsets @ up))
        ref = offsets[0] - (offsets[0] @ up) * up
        ref = ref / np.linalg.norm(ref)
        side = np.cross(up, ref)
        ring = np.sqrt(max(radius**2 - height**2, 1e-6))
        poses = []
        for t in np.linspace(0, 2 * np.pi, n, endpoint=False):
            eye = centre + up * height + ring * (np.cos(t) * ref + np.sin(t) * side)
            poses.append(look_at(eye, centre, up))
        return np.stack(poses)
    # forward-facing: spiral around the mean camera, radii from the camera spread
    mean = c2ws[:, :3, 3].mean(0)
    fwd = c2ws[:, :3, 2].mean(0)
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, -up)
    right = right / np.linalg.norm(right)
    cam_up = np.cross(right, fwd)
    rads = np.percentile(np.abs(c2ws[:, :3, 3] - mean) @ np.stack([right, cam_up, fwd]).T, 90, axis=0)
    target = mean + fwd * np.linalg.norm(centre - mean)
    poses = []
    for t in np.linspace(0, 4 * np.pi, n, endpoint=False):  # two turns, as NeRF's spiral
        eye = mean + rads[0] * np.cos(t) * right + rads[1] * np.sin(t) * cam_up + rads[2] * 0.5 * np.sin(0.5 * t) * fwd
        poses.append(look_at(eye, target, up))
    return np.stack(poses)


def orbit_cameras(
    means, n: int, size: int, fov_degrees: float, elevations: tuple[float, ...] = (15.0, -15.0), phase: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` camera-to-world matrices (OpenCV) on a ring around the median of ``means`` [N, 3] (an
    array or a tensor), at the ``elevations`` (degrees) in turn (default ±15°), starting ``phase``
    radians round, far enough to see the central 80 % of the Gaussians; and ``K``."""
    points = means.detach().double().cpu().numpy() if hasattr(means, "detach") else np.asarray(means, np.float64)
    centre, dist = frame_gaussians(points, fov_degrees)
    f = 0.5 * size / math.tan(math.radians(fov_degrees) / 2)
    up = np.array([0.0, -1.0, 0.0])  # INRIA / COLMAP scenes: y points down
    poses = []
    for i, t in enumerate(np.linspace(0, 2 * np.pi, n, endpoint=False) + phase):
        el = math.radians(elevations[i % len(elevations)])
        d = np.array([math.cos(el) * math.cos(t), -math.sin(el), math.cos(el) * math.sin(t)])
        poses.append(look_at(centre + dist * d, centre, up))
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    return np.stack(poses), K
