"""Where a viewer starts: the camera that frames a scene (:class:`Framing`), as pure functions.

* :func:`frame_cameras` — from the cameras a scene was trained with: up is the mean camera up,
  the look-at point is the point nearest all optical axes (least squares,
  :func:`~splatpack.render.camera.focus_point`), and the start camera looks at it from the
  direction and the median distance of a typical training camera, with its field of view.
* :func:`frame_points` — from the Gaussians alone: the look-at point is the opacity-weighted
  trimmed mean of their centres (5–95 % per axis), the extent their opacity-weighted 5–95 %
  quantile box grown by 15 % on each side (floaters and far outliers ignored), up the capture
  convention of the scene's axes; the camera stands in front of the scene, 15° above it, as far
  as the box needs to fit the field of view with a margin.

Axes: splatpack's readers give every format in the INRIA PLY / COLMAP axes (x right, y down,
z forward, "RDF"; SPZ's right-up-back axes are turned on load), so a bare scene file has −y up
(:data:`RDF_UP`). Blender / NeRF-synthetic captures, the built-in ``default`` scene among them,
are z-up (:data:`BLENDER_UP`); :func:`capture_up` maps a capture format to its up axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from splatpack.render.camera import focus_point, look_at

__all__ = [
    "BLENDER_UP",
    "DEFAULT_FOV",
    "RDF_UP",
    "Framing",
    "capture_up",
    "fit_distance",
    "frame_cameras",
    "frame_points",
    "weighted_quantiles",
]

RDF_UP = (0.0, -1.0, 0.0)  # INRIA PLY / COLMAP (and SPZ once read): y points down
BLENDER_UP = (0.0, 0.0, 1.0)  # Blender / NeRF-synthetic worlds are z-up
DEFAULT_FOV = 50.0  # vertical field of view (degrees) when no training camera gives one
QUANTILES = (0.05, 0.95)  # the extent of the Gaussians: this share of their opacity lies inside
PAD = 0.15  # the quantile box grows by this share of its size on every side (an object's thin ends)
MARGIN = 1.15  # the extent fills 1 / MARGIN of the field of view
ELEVATION = 15.0  # degrees above the scene's horizon of the camera framed from the Gaussians
MAX_SAMPLES = 1_000_000  # quantiles over at most this many Gaussians (an even stride)
MIN_AXIS_SPREAD = 1e-3  # below this mean sin² between optical axes their crossing is ill-posed


@dataclass(frozen=True)
class Framing:
    """A start view: the camera at ``eye`` looks at ``centre`` with world ``up`` at the top of
    the screen and a vertical field of view ``fov_degrees``. ``radius`` is the scene's size
    (orbit and fly speeds), ``background`` the RGB colour (0..1) the scene was trained on, when
    known, and ``source`` says what the framing came from (``"cameras"`` or ``"gaussians"``)."""

    centre: np.ndarray
    eye: np.ndarray
    up: np.ndarray
    fov_degrees: float
    radius: float
    source: str
    background: tuple[float, float, float] | None = None

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.eye - self.centre))

    def c2w(self) -> np.ndarray:
        """The start camera as an OpenCV camera-to-world matrix [4, 4]."""
        return look_at(self.eye, self.centre, self.up)

    def with_background(self, background: tuple[float, float, float] | None) -> Framing:
        return replace(self, background=None if background is None else tuple(float(c) for c in background))

    def to_json(self) -> dict:
        """The framing as the web viewer reads it from ``config.json``."""
        return {
            "centre": [float(v) for v in self.centre],
            "eye": [float(v) for v in self.eye],
            "up": [float(v) for v in self.up],
            "fov": float(self.fov_degrees),
            "radius": float(self.radius),
            "source": self.source,
            "background": None if self.background is None else [float(c) for c in self.background],
        }


def capture_up(fmt: str | None) -> tuple[float, float, float]:
    """The world up axis of a capture format's scenes: +z for Blender, −y otherwise (COLMAP,
    LLFF and nerfstudio data as splatpack reads them, and every scene file)."""
    return BLENDER_UP if fmt == "blender" else RDF_UP


def _unit(v, fallback=RDF_UP) -> np.ndarray:
    v = np.asarray(v, np.float64)
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 and math.isfinite(n) else np.asarray(fallback, np.float64)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs) -> np.ndarray:
    """Quantiles ``qs`` (0..1) of ``values`` [N] where each value counts with its weight (the
    midpoint rule: a value's mass is centred on it; linear in between). Uniform weights give
    the median of the values for 0.5; values of weight 0 are left out."""
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w) - 0.5 * w
    return np.interp(np.asarray(qs, np.float64), cum / w.sum(), v)


def _points(means, opacities) -> tuple[np.ndarray, np.ndarray]:
    """Finite centres [N, 3] and their weights (opacities clipped to 0..1; all ones when none
    are given or none is positive), on an even stride of at most :data:`MAX_SAMPLES`."""
    m = np.asarray(means, np.float64).reshape(-1, 3)
    w = np.ones(len(m)) if opacities is None else np.asarray(opacities, np.float64).reshape(-1)
    if len(w) != len(m):
        raise ValueError(f"{len(m)} centres but {len(w)} opacities")
    step = max(1, math.ceil(len(m) / MAX_SAMPLES))
    m, w = m[::step], w[::step]
    ok = np.isfinite(m).all(axis=1) & np.isfinite(w)
    m, w = m[ok], np.clip(w[ok], 0.0, 1.0)
    if len(w) and w.sum() <= 0:
        w = np.ones(len(m))
    return m, w


def _robust_box(m: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, low, high) of the weighted centres: per axis the weighted mean of the values in
    the 5–95 % quantile range (a trimmed mean: floaters drop out, yet an object's parts count by
    their weight, so a light part above a heavy base still pulls the centre up), and that range
    grown by :data:`PAD` of its size on each side (the quantiles cut off an object's thin ends)."""
    centre, lo, hi = np.zeros(3), np.zeros(3), np.zeros(3)
    for a in range(3):
        lo[a], hi[a] = weighted_quantiles(m[:, a], w, QUANTILES)
        inside = (m[:, a] >= lo[a]) & (m[:, a] <= hi[a]) & (w > 0)
        centre[a] = np.average(m[inside, a], weights=w[inside]) if inside.any() else 0.5 * (lo[a] + hi[a])
    pad = PAD * (hi - lo)
    return centre, lo - pad, hi + pad


def fit_distance(offsets: np.ndarray, forward: np.ndarray, up: np.ndarray, fov_degrees: float, aspect: float) -> float:
    """How far behind the look-at point, along ``forward``, a camera with world ``up`` at the top
    of the screen must stand for every point ``offsets`` [K, 3] (relative to the look-at point)
    to lie in the central 1/:data:`MARGIN` of a field of view of ``fov_degrees`` (vertical) at
    width/height ``aspect``, and in front of the camera."""
    z = _unit(forward)
    x = _unit(np.cross(z, up), np.cross(z, [1.0, 0.0, 0.0]))  # screen right, as look_at
    y = np.cross(z, x)  # screen down
    ty = math.tan(math.radians(fov_degrees) / 2) / MARGIN
    tx = ty * aspect
    px, py, pz = offsets @ x, offsets @ y, offsets @ z
    # a point at depth D + pz is inside when |px| <= tx (D + pz) and |py| <= ty (D + pz)
    need = np.maximum(np.abs(px) / tx, np.abs(py) / ty) - pz
    span = float(np.abs(offsets).max(initial=0.0))
    return float(max(need.max(initial=0.0), (-pz).max(initial=0.0) + 0.05 * span, 1e-3))


def frame_points(
    means,
    opacities=None,
    up=RDF_UP,
    fov_degrees: float = DEFAULT_FOV,
    aspect: float = 1.0,
    front=(0.0, 0.0, -1.0),
) -> Framing:
    """Frame Gaussians with centres ``means`` [N, 3] and opacities (0..1) ``opacities`` [N]
    from robust statistics: look at their weighted trimmed mean, from the ``front`` side
    (default −z, where a capture's cameras stand in RDF axes; −y when that is along ``up``)
    raised by :data:`ELEVATION` towards ``up``, at the distance that fits their weighted 5–95 %
    box, grown by :data:`PAD`, in the view (:func:`fit_distance`). Floaters (far and few, or
    faint) move none of these."""
    up = _unit(up)
    m, w = _points(means, opacities)
    if len(m) == 0:
        centre, lo, hi = np.zeros(3), -np.ones(3), np.ones(3)
    else:
        centre, lo, hi = _robust_box(m, w)
    horizontal = np.asarray(front, np.float64) - (np.asarray(front, np.float64) @ up) * up
    if np.linalg.norm(horizontal) < 1e-6:  # front along up (a z-up world): stand on the −y side
        horizontal = np.array([0.0, -1.0, 0.0]) - (-up[1]) * up
    horizontal = _unit(horizontal, np.cross(up, [1.0, 0.0, 0.0]))
    el = math.radians(ELEVATION)
    direction = math.cos(el) * horizontal + math.sin(el) * up  # from the centre to the eye
    corners = np.array([[(lo, hi)[(k >> a) & 1][a] for a in range(3)] for k in range(8)]) - centre
    dist = fit_distance(corners, -direction, up, fov_degrees, aspect)
    radius = max(0.5 * float(np.linalg.norm(hi - lo)), 1e-3)
    return Framing(centre, centre + dist * direction, up, float(fov_degrees), radius, "gaussians")


def _look_at_point(c2ws: np.ndarray, means, opacities) -> np.ndarray:
    """The point nearest every optical axis, when the axes cross (else, e.g. for parallel
    cameras, the Gaussians' trimmed mean projected onto the mean optical axis, or a unit in
    front of the mean camera)."""
    dirs = c2ws[:, :3, 2] / np.linalg.norm(c2ws[:, :3, 2], axis=1, keepdims=True)
    eyes = c2ws[:, :3, 3]
    spread = np.linalg.eigvalsh(np.eye(3) * len(dirs) - dirs.T @ dirs)[0] / len(dirs)  # mean sin² to the best axis
    if spread >= MIN_AXIS_SPREAD:
        point = focus_point(c2ws)
        if np.mean(np.einsum("ij,ij->i", point - eyes, dirs)) > 0:  # in front of the cameras
            return point
    origin, forward = eyes.mean(0), _unit(dirs.mean(0))
    m, w = _points(means, opacities) if means is not None else (np.zeros((0, 3)), np.zeros(0))
    depth = float((_robust_box(m, w)[0] - origin) @ forward) if len(m) else 0.0
    return origin + forward * (depth if depth > 0 else 1.0)


def frame_cameras(c2ws, Ks, heights, means=None, opacities=None) -> Framing:
    """Frame a scene from its training cameras: OpenCV camera-to-world ``c2ws`` [M, 4, 4],
    intrinsics ``Ks`` [M, 3, 3] and image ``heights`` [M] (pixels).

    Up is the mean of the cameras' up vectors (−y columns); the look-at point is the
    least-squares point nearest their optical axes; the start camera is a typical one — the
    camera with the least |elevation − median elevation| + |log(distance / median distance)| +
    ¼·(its angle to the mean viewing direction), angles in radians, seen from the look-at point
    — moved to the median distance, looking at the point with its own vertical field of view.
    ``means`` and ``opacities`` (the Gaussians, optional) give the scene's radius, and the
    look-at point when the axes do not cross."""
    c2ws = np.asarray(c2ws, np.float64).reshape(-1, 4, 4)
    if len(c2ws) == 0:
        raise ValueError("no cameras to frame from")
    Ks = np.asarray(Ks, np.float64).reshape(-1, 3, 3)
    heights = np.asarray(heights, np.float64).reshape(-1)
    up = _unit(-c2ws[:, :3, 1].mean(0))
    centre = _look_at_point(c2ws, means, opacities)
    offsets = c2ws[:, :3, 3] - centre
    dist = np.maximum(np.linalg.norm(offsets, axis=1), 1e-9)
    dirs = offsets / dist[:, None]
    elevation = np.arcsin(np.clip(dirs @ up, -1.0, 1.0))
    mean_dir = _unit(dirs.mean(0), dirs[0])
    score = (
        np.abs(elevation - np.median(elevation))
        + np.abs(np.log(dist / np.median(dist)))
        + 0.25 * np.arccos(np.clip(dirs @ mean_dir, -1.0, 1.0))
    )
    i = int(np.argmin(score))
    fov = math.degrees(2 * math.atan2(0.5 * heights[i], Ks[i, 1, 1]))
    eye = centre + float(np.median(dist)) * dirs[i]
    radius = float(np.median(dist)) * math.sin(math.radians(fov) / 2)
    if means is not None:
        m, w = _points(means, opacities)
        if len(m):
            _, lo, hi = _robust_box(m, w)
            radius = max(0.5 * float(np.linalg.norm(hi - lo)), 1e-3)
    return Framing(centre, eye, up, fov, radius, "cameras")
