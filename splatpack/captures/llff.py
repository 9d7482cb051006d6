"""LLFF captures: ``poses_bounds.npy`` + ``images[_N]/`` (+ optional ``sparse/0/points3D``).

Format (Mildenhall et al. 2019, ``LLFF/llff/poses/pose_utils.py``): an ``N × 17`` array, per
image a 3×5 matrix ``[R | t | (h, w, focal)]`` at the original resolution, then ``near, far``.
Rows are flattened row-major. The rotation columns are camera axes in world coordinates in
LLFF order ``[down, right, backwards]``; LLFF builds them from COLMAP's camera-to-world by a
pure column permutation (world frame and scale unchanged), so OpenCV ``[right, down, forward]``
is ``[c1, c0, -c2]`` and COLMAP's ``points3D`` (when present) already lie in the same world.
No recentring or rescaling is applied. Images are those of ``images_{downscale}/`` (else
``images/`` resized on load), sorted by name as in the NeRF loader; the principal point is the
image centre; frames are split every ``test_every``-th (LLFF holdout convention: 8). Each frame
keeps its ``near, far`` bounds; object masks are found in ``masks/`` (or ``masks_N/``) beside the
images (:mod:`splatpack.captures.masks`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from splatpack.captures.colmap import read_points3D
from splatpack.captures.images import (
    image_dirs,
    intrinsics_matrix,
    list_images,
    pick_image_dir,
    scaled_size,
    split_frames,
)
from splatpack.captures.masks import find_mask
from splatpack.captures.types import Capture, Frame
from splatpack.core.errors import CaptureError


def load_llff(root: Path, downscale: int = 1, test_every: int = 8) -> Capture:
    root = Path(root)
    pb_path = root / "poses_bounds.npy"
    try:
        pb = np.load(pb_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise CaptureError(f"cannot read poses: {e}", pb_path) from None
    if pb.ndim != 2 or pb.shape[1] != 17 or len(pb) == 0 or not np.all(np.isfinite(pb)):
        raise CaptureError(f"expected a finite N x 17 array, got shape {pb.shape}", pb_path)
    poses, bounds = pb[:, :15].reshape(-1, 3, 5).astype(np.float64), pb[:, 15:]
    h0, w0 = int(round(poses[0, 0, 4])), int(round(poses[0, 1, 4]))
    folder = pick_image_dir(image_dirs(root, downscale), (w0, h0), downscale, None, root)
    paths = list_images(folder)
    if len(paths) != len(poses):
        raise CaptureError(f"{len(paths)} images in {folder.name}/ but {len(poses)} poses", pb_path)
    frames = []
    for path, pose, (near, far) in zip(paths, poses, bounds):
        (H, W, f), R, t = pose[:, 4], pose[:, :3], pose[:, 3]
        w, h = scaled_size(path, (int(round(W)), int(round(H))), downscale)
        c2w = np.eye(4)
        c2w[:3, :3] = np.stack([R[:, 1], R[:, 0], -R[:, 2]], axis=1)
        c2w[:3, 3] = t
        K = intrinsics_matrix(f * w / W, f * h / H, w / 2, h / 2)
        frames.append(Frame(path, c2w, K, w, h, mask_path=find_mask(path), near_far=(float(near), float(far))))
    train, test = split_frames(frames, test_every, root)
    points = colors = None
    for name in ("points3D.bin", "points3D.txt"):
        if (root / "sparse/0" / name).is_file():
            points, colors = read_points3D(root / "sparse/0" / name)
            break
    near_far = (float(bounds.min()), float(bounds.max()))
    extra = {"images_dir": str(folder), "bounds": bounds.astype(np.float64)}
    return Capture(root.name, "llff", root, train, test, points, colors, near_far=near_far, extra=extra)
