"""Sparse points for photos whose cameras are known: COLMAP's point triangulation with fixed poses.

:func:`triangulate_known_poses` is COLMAP's ``point_triangulator`` (pycolmap's
``triangulate_points``) for a folder of photos and a pose file (LLFF ``poses_bounds.npy``,
nerfstudio or Blender ``transforms.json``, a COLMAP model; read by
:func:`splatpack.captures.pose_file.read_pose_file`):

1. SIFT features of every photo (one database camera per photo), written into ``database.db``;
2. the database cameras set to the known intrinsics (``PINHOLE``, or ``OPENCV`` for a lens with
   distortion), so that matches are verified with calibrated two-view geometry;
3. exhaustive or sequential matching;
4. a reconstruction holding the known poses as COLMAP wants them — world-to-camera rotation and
   translation in OpenCV camera axes, the inverse of our camera-to-world — one trivial rig and
   frame per photo, with the database's image and camera ids;
5. triangulation, retriangulation and bundle adjustment of the points only: COLMAP holds the
   frames fixed and, with ``refine_intrinsics`` off, the cameras too.

The output folder is that of :func:`splatpack.captures.sfm.run_sfm` (``sparse/0``, ``images`` or
``images_K``, ``database.db``, ``splatpack_sfm.json``), written atomically, so ``splatpack train
OUT`` reads it as a COLMAP capture with the given poses and the triangulated points.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from splatpack.captures.downscale import DownscaleConfig
from splatpack.captures.images import list_images
from splatpack.captures.pose_file import at_image_size, read_pose_file
from splatpack.captures.sfm import (
    Matching,
    colmap_errors,
    extract_features,
    match_features,
    process_folder,
    require_pycolmap,
    write_hint,
)
from splatpack.captures.types import Frame
from splatpack.core.errors import CaptureError, SplatpackError

__all__ = ["TriangulationConfig", "colmap_camera", "triangulate_known_poses"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriangulationConfig:
    """``matching``: ``exhaustive`` or ``sequential`` (name order); ``downscale``: photos at 1/K
    (``images_K``) for feature extraction; ``max_image_size``: COLMAP's own SIFT size limit (px);
    ``refine_intrinsics``: let bundle adjustment refine focal length and distortion (poses stay)."""

    matching: Matching = "exhaustive"
    downscale: DownscaleConfig = field(default_factory=DownscaleConfig)
    max_image_size: int = 3200
    refine_intrinsics: bool = False

    def __post_init__(self) -> None:
        if self.matching not in ("exhaustive", "sequential"):
            raise SplatpackError(f"matching must be 'exhaustive' or 'sequential', got {self.matching!r}")


def colmap_camera(pycolmap: ModuleType, camera_id: int, frame: Frame):
    """The ``pycolmap.Camera`` of a frame: ``PINHOLE`` from ``K``, or ``OPENCV`` from the source
    intrinsics and ``k1, k2, p1, p2`` when the frame has lens distortion (SIMPLE_RADIAL and RADIAL
    are OPENCV with the other terms zero). Pixel centres are at +0.5 in both conventions."""
    d = frame.distortion
    K = frame.K if d is None or d.K_src is None else d.K_src
    params = [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]
    model = "PINHOLE" if d is None else "OPENCV"
    if d is not None:
        params += [d.k1, d.k2, d.p1, d.p2]
    return pycolmap.Camera(
        camera_id=camera_id,
        model=model,
        width=frame.width,
        height=frame.height,
        params=params,
        has_prior_focal_length=True,
    )


def _known_reconstruction(pycolmap: ModuleType, db: Path, frames: dict[str, Frame]):
    """The database's cameras set to the known ones, and a reconstruction of the known poses."""
    rec = pycolmap.Reconstruction()
    database = pycolmap.Database.open(db)
    try:
        for image in database.read_all_images():
            frame = frames[image.name]
            camera = colmap_camera(pycolmap, image.camera_id, frame)
            database.update_camera(camera)
            rec.add_camera_with_trivial_rig(camera)
            cam_from_world = frame.viewmat()[:3]  # OpenCV world-to-camera, as COLMAP stores it
            known = pycolmap.Image(name=image.name, camera_id=image.camera_id, image_id=image.image_id)
            rec.add_image_with_trivial_frame(known, pycolmap.Rigid3d(cam_from_world))
    finally:
        database.close()
    return rec


def triangulate_known_poses(
    images_dir: str | Path, pose_file: str | Path, out_dir: str | Path, config: TriangulationConfig | None = None
) -> dict:
    """Triangulate points for the photos of ``images_dir`` with the poses of ``pose_file`` held
    fixed; write the capture to ``out_dir``. Returns stats: ``images``, ``poses`` (the pose
    file's format), ``points``, ``mean_track_length``, ``mean_reprojection_error`` (px),
    ``downscale``, ``seconds``, ``sparse_dir``."""
    config = config or TriangulationConfig()
    pycolmap = require_pycolmap()
    images_dir, out_dir = Path(images_dir).absolute(), Path(out_dir).absolute()
    t0 = time.perf_counter()
    fmt, frames = read_pose_file(pose_file, images_dir)
    with (
        process_folder(images_dir, out_dir, config.downscale) as (tmp, photo_dir, names, factor),
        colmap_errors(pycolmap, images_dir),
    ):
        known = {f.name: at_image_size(f, p) for f, p in zip(frames, list_images(photo_dir))}
        db = tmp / "database.db"
        extract_features(pycolmap, db, photo_dir, names, "PER_IMAGE", "PINHOLE", config.max_image_size)
        rec = _known_reconstruction(pycolmap, db, known)
        match_features(pycolmap, db, config.matching)
        log.info("sfm: triangulating points with the %d known poses held fixed", len(known))
        sparse = tmp / "sparse" / "0"
        sparse.mkdir(parents=True)
        rec = pycolmap.triangulate_points(rec, db, photo_dir, sparse, refine_intrinsics=config.refine_intrinsics)
        if rec.num_points3D() == 0:
            raise CaptureError(
                f"triangulation found no points in {len(names)} images (too few matching features?)", images_dir
            )
        stats = {
            "images": len(names),
            "poses": fmt,
            "points": rec.num_points3D(),
            "mean_track_length": round(float(rec.compute_mean_track_length()), 3),
            "mean_reprojection_error": round(float(rec.compute_mean_reprojection_error()), 3),
            "downscale": factor,
            "seconds": round(time.perf_counter() - t0, 2),
            "sparse_dir": str(out_dir / "sparse" / "0"),
        }
        write_hint(tmp, out_dir, photo_dir, stats)
    log.info(
        "sfm: %d points from %d images with known poses, mean track %.1f, %.2f px mean reprojection error, %.1f s",
        stats["points"],
        stats["images"],
        stats["mean_track_length"],
        stats["mean_reprojection_error"],
        stats["seconds"],
    )
    return stats
