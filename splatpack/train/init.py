"""Random initialisation in the cameras' common view, for captures without SfM points.

3DGS initialises such captures with points uniform in a box (Blender: ±1.3). For an
object-centric capture whose cameras circle the object, most of that box is empty space that
no camera, or only a few, can see; the Gaussians there become floaters and blobs in the views
that were not trained on. :func:`common_view_points` samples instead the **frustum
intersection**: points uniform in the bounding box of the region the cameras look at, kept when
at least ``min_fraction`` of the cameras see them (inside the image, between the near and far
bounds — LLFF's per-image depth bounds when known). With object masks (or the images' alpha) a
point that falls outside the mask of any camera that sees it (more than ``max_outside`` of them)
is dropped too, which is **visual-hull carving** (Laurentini 1994) by rejection sampling.
:func:`point_colours` gives each point the mean colour of the pixels it projects to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Cameras", "common_view_points", "frustum_votes", "look_at_point", "point_colours"]


@dataclass
class Cameras:
    """Pinhole cameras: OpenCV camera-to-world ``c2w`` [C, 4, 4], ``K`` [C, 3, 3], image ``sizes``
    [C, 2] (width, height), depth bounds ``near`` and ``far`` [C] along the optical axis."""

    c2w: np.ndarray
    K: np.ndarray
    sizes: np.ndarray
    near: np.ndarray
    far: np.ndarray

    def __len__(self) -> int:
        return len(self.c2w)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel coordinates ``u, v`` and depth ``z`` [C, P] of world ``points`` [P, 3] in every camera."""
        R, t = self.c2w[:, :3, :3], self.c2w[:, :3, 3]
        offset = np.einsum("cj,cji->ci", t, R)  # Rᵀ t
        # camera coordinates Rᵀ (X − t), one [C, P] plane per axis (elementwise: fast for 3×3)
        x, y, z = (sum(R[:, j, i, None] * points[None, :, j] for j in range(3)) - offset[:, i, None] for i in range(3))
        safe = np.where(z > 1e-12, z, 1e-12)
        u = self.K[:, 0, 0, None] * x / safe + self.K[:, 0, 2, None]
        v = self.K[:, 1, 1, None] * y / safe + self.K[:, 1, 2, None]
        return u, v, z


def look_at_point(c2w: np.ndarray) -> np.ndarray:
    """The point nearest to every optical axis in the least-squares sense:
    ``argmin_p Σ_i |(I − d_i d_iᵀ)(p − c_i)|²``, i.e. ``(Σ P_i) p = Σ P_i c_i`` with
    ``P_i = I − d_i d_iᵀ`` (``d_i`` the viewing direction, ``c_i`` the centre). Parallel axes
    (a forward-facing rig) make it ill-posed; ``lstsq`` then returns the minimum-norm solution."""
    d = c2w[:, :3, 2] / np.linalg.norm(c2w[:, :3, 2], axis=1, keepdims=True)
    P = np.eye(3)[None] - d[:, :, None] * d[:, None, :]
    c = c2w[:, :3, 3]
    return np.linalg.lstsq(P.sum(0), np.einsum("cij,cj->i", P, c), rcond=None)[0]


def frustum_votes(
    points: np.ndarray, cams: Cameras, masks: Sequence[np.ndarray | None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per point [P]: how many cameras see it inside their frustum (image rectangle, near < z <
    far) and, of those, how many see it outside their mask (mask [H, W] < 0.5; no mask: none)."""
    u, v, z = cams.project(points)
    w, h = cams.sizes[:, 0, None], cams.sizes[:, 1, None]
    seen = (z > cams.near[:, None]) & (z < cams.far[:, None]) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    outside = np.zeros(len(points), dtype=np.int64)
    for i, m in enumerate(masks or ()):
        if m is None:
            continue
        s = np.flatnonzero(seen[i])
        rows = np.clip(v[i, s].astype(np.int64), 0, m.shape[0] - 1)
        cols = np.clip(u[i, s].astype(np.int64), 0, m.shape[1] - 1)
        outside[s] += m[rows, cols] < 0.5
    return seen.sum(0), outside


def common_view_points(
    cams: Cameras,
    n: int,
    min_fraction: float = 0.8,
    masks: Sequence[np.ndarray | None] | None = None,
    max_outside: float = 0.05,
    seed: int = 0,
) -> np.ndarray:
    """``n`` points [n, 3] uniform in the region seen by at least ``min_fraction`` of the cameras
    (and, with ``masks``, inside the mask of all but ``max_outside`` of the cameras that see them).

    Two rounds of rejection sampling: candidates uniform in the bounding box of every frustum's
    near and far corners find the accepted region's bounding box, then candidates uniform in
    that box (padded by 5 %) are kept until there are ``n``. Raises ``ValueError`` when no
    candidate is accepted (the cameras share no view, or the masks are empty).
    """
    rng = np.random.default_rng(seed)
    k = max(1, int(np.ceil(min_fraction * len(cams))))
    batch = int(np.clip((1 << 22) // len(cams), 1 << 12, 1 << 16))  # candidates × cameras ≤ 4 M: ~200 MB

    def accept(pts: np.ndarray) -> np.ndarray:
        seen, out = frustum_votes(pts, cams, masks)
        return pts[(seen >= k) & (out <= max_outside * seen)]

    lo, hi = _frusta_bounds(cams)
    found = np.concatenate([accept(rng.uniform(lo, hi, (batch, 3))) for _ in range(4)])
    if len(found) == 0:
        inside = " inside their masks" if masks is not None and any(m is not None for m in masks) else ""
        raise ValueError(f"no point is seen by {k} of the {len(cams)} cameras{inside}")
    pad = 0.05 * (found.max(0) - found.min(0)) + 1e-9
    lo, hi = found.min(0) - pad, found.max(0) + pad
    kept, total = [], 0
    for _ in range(256):  # the box is the accepted region's: acceptance is high, this ends early
        pts = accept(rng.uniform(lo, hi, (batch, 3)))
        kept.append(pts)
        total += len(pts)
        if total >= n:
            break
    return np.concatenate(kept)[:n]


def _frusta_bounds(cams: Cameras) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box of the cameras' frusta between their near and far bounds."""
    corners = []
    for c2w, K, (w, h), near, far in zip(cams.c2w, cams.K, cams.sizes, cams.near, cams.far):
        pix = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64)
        rays = np.stack([(pix[:, 0] - K[0, 2]) / K[0, 0], (pix[:, 1] - K[1, 2]) / K[1, 1], np.ones(4)], 1)
        for depth in (near, far):
            corners.append((rays * depth) @ c2w[:3, :3].T + c2w[:3, 3])
    pts = np.concatenate(corners)
    return pts.min(0), pts.max(0)


def point_colours(points: np.ndarray, cams: Cameras, images: Sequence[np.ndarray]) -> np.ndarray:
    """Mean colour [P, 3] in [0, 1] of the pixels (nearest) that ``points`` project to in the
    ``images`` [H, W, 3] of the cameras that see them in front (z > 0); grey where none does.
    Occlusion is ignored: a point's colour averages every view's surface along its ray."""
    u, v, z = cams.project(points)
    total, count = np.zeros((len(points), 3)), np.zeros(len(points))
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        s = np.flatnonzero((z[i] > 0) & (u[i] >= 0) & (u[i] < w) & (v[i] >= 0) & (v[i] < h))
        total[s] += img[v[i, s].astype(np.int64), u[i, s].astype(np.int64)]
        count[s] += 1
    return np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], 0.5)
