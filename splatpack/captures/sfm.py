"""Structure from motion for a folder of images, with pycolmap (COLMAP's Python bindings) on the CPU.

:func:`run_sfm` runs SIFT feature extraction, exhaustive or sequential matching and COLMAP's
incremental mapper, and writes a capture that :func:`splatpack.captures.load_capture` reads::

    out_dir/database.db           COLMAP database (features, matches)
    out_dir/sparse/0/             the largest reconstruction (cameras/images/points3D/rigs/frames .bin)
    out_dir/images -> images_dir  symlink to the (absolute) image folder, when it can be made
    out_dir/splatpack_sfm.json    {"images_dir": ..., stats}; the COLMAP reader's fallback for the images

pycolmap is an optional dependency (``pip install splatpack[sfm]``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Literal

from splatpack.captures.colmap import SUPPORTED_MODELS
from splatpack.captures.images import list_images
from splatpack.core.errors import CaptureError, SplatpackError

log = logging.getLogger(__name__)


def run_sfm(
    images_dir: str | Path,
    out_dir: str | Path,
    matching: Literal["exhaustive", "sequential"] = "exhaustive",
    camera_model: str = "SIMPLE_RADIAL",
    single_camera: bool = True,
    max_image_size: int = 3200,
) -> dict:
    """Reconstruct cameras and sparse points from ``images_dir`` into ``out_dir``.

    ``matching``: ``exhaustive`` (all pairs, best up to a few hundred images) or ``sequential``
    (neighbours in name order, for videos). ``camera_model``: a COLMAP model the readers support.
    ``single_camera``: all images share one camera. Returns stats: ``images``, ``registered``,
    ``points``, ``mean_reprojection_error`` (px), ``models`` (reconstructions found), ``seconds``,
    ``sparse_dir``.
    """
    try:
        import pycolmap
    except ImportError:
        raise SplatpackError("structure from motion needs pycolmap: pip install 'splatpack[sfm]'") from None
    images_dir, out_dir = Path(images_dir).absolute(), Path(out_dir).absolute()
    if matching not in ("exhaustive", "sequential"):
        raise SplatpackError(f"matching must be 'exhaustive' or 'sequential', got {matching!r}")
    if camera_model not in SUPPORTED_MODELS:
        raise SplatpackError(f"camera_model must be one of {', '.join(SUPPORTED_MODELS)}, got {camera_model!r}")
    if not images_dir.is_dir():
        raise CaptureError("images folder does not exist", images_dir)
    names = [p.name for p in list_images(images_dir)]
    if len(names) < 2:
        raise CaptureError(f"structure from motion needs at least 2 images, found {len(names)}", images_dir)

    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / "database.db"
    db.unlink(missing_ok=True)  # a stale database would hold duplicate images
    t0 = time.perf_counter()
    level, pycolmap.logging.minloglevel = pycolmap.logging.minloglevel, 1  # COLMAP: warnings and up
    try:
        log.info("sfm: extracting SIFT features from %d images in %s", len(names), images_dir)
        pycolmap.extract_features(
            db,
            images_dir,
            image_names=names,
            camera_mode=pycolmap.CameraMode.SINGLE if single_camera else pycolmap.CameraMode.AUTO,
            reader_options=pycolmap.ImageReaderOptions(camera_model=camera_model),
            extraction_options=pycolmap.FeatureExtractionOptions(max_image_size=max_image_size),
            device=pycolmap.Device.cpu,
        )
        t1 = time.perf_counter()
        log.info("sfm: %s matching (features took %.1f s)", matching, t1 - t0)
        match = pycolmap.match_exhaustive if matching == "exhaustive" else pycolmap.match_sequential
        match(db, device=pycolmap.Device.cpu)
        t2 = time.perf_counter()
        log.info("sfm: incremental mapping (matching took %.1f s)", t2 - t1)
        registered = [0]

        def on_image() -> None:
            registered[0] += 1
            if registered[0] % 10 == 0:
                log.info("sfm: %d images registered", registered[0])

        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".sfm-") as tmp:
            models = pycolmap.incremental_mapping(db, images_dir, tmp, next_image_callback=on_image)
            if not models:
                raise CaptureError(
                    f"reconstruction failed: no model from {len(names)} images (too few matching features?)",
                    images_dir,
                )
            rec = max(models.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()))
            sparse = out_dir / "sparse" / "0"
            if sparse.exists():
                shutil.rmtree(sparse)
            sparse.mkdir(parents=True)
            rec.write(sparse)
    except RuntimeError as e:  # COLMAP's checks surface as RuntimeError
        raise CaptureError(f"reconstruction failed: {e}", images_dir) from None
    finally:
        pycolmap.logging.minloglevel = level

    stats = {
        "images": len(names),
        "registered": rec.num_reg_images(),
        "points": rec.num_points3D(),
        "mean_reprojection_error": float(rec.compute_mean_reprojection_error()),
        "models": len(models),
        "seconds": round(time.perf_counter() - t0, 2),
        "sparse_dir": str(sparse),
    }
    link = out_dir / "images"
    if not link.exists() and not link.is_symlink():
        try:
            os.symlink(images_dir, link, target_is_directory=True)
        except OSError:  # no symlinks here (e.g. Windows without rights): the json suffices
            pass
    (out_dir / "splatpack_sfm.json").write_text(json.dumps({"images_dir": str(images_dir), **stats}, indent=2))
    log.info(
        "sfm: registered %d/%d images, %d points, %.2f px mean reprojection error, %.1f s",
        stats["registered"],
        stats["images"],
        stats["points"],
        stats["mean_reprojection_error"],
        stats["seconds"],
    )
    return stats
