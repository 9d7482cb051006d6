"""Structure from motion for a folder of images, with pycolmap (COLMAP's Python bindings) on the CPU.

:func:`run_sfm` runs SIFT feature extraction, exhaustive or sequential matching and COLMAP's
incremental mapper, and writes a capture that :func:`splatpack.captures.load_capture` reads::

    out_dir/database.db           COLMAP database (features, matches)
    out_dir/sparse/0/             the largest reconstruction (cameras/images/points3D/rigs/frames .bin)
    out_dir/images -> images_dir  symlink to the (absolute) image folder, when it can be made
    out_dir/images_K/             instead, with a downscale K > 1: the photos at 1/K size
                                  (:mod:`splatpack.captures.downscale`), which the model describes
    out_dir/splatpack_sfm.json    {"images_dir": ..., stats}; the COLMAP reader's fallback for the images

The output folder is built aside and swapped in (:func:`splatpack.core.atomic.atomic_folder`): a
failed run leaves the previous one. An existing folder is replaced only when it is empty or
holds a previous run's files and nothing else. The helpers here (:func:`require_pycolmap`,
:func:`extract_features`, :func:`match_features`, :func:`process_folder`) are shared with
point triangulation from known poses (:mod:`splatpack.captures.triangulate`).

pycolmap is an optional dependency (``pip install splatpack[sfm]``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Literal

from splatpack.captures.colmap import SUPPORTED_MODELS
from splatpack.captures.downscale import DownscaleConfig, write_downscaled
from splatpack.captures.images import list_images
from splatpack.core.atomic import atomic_folder
from splatpack.core.errors import CaptureError, SplatpackError

log = logging.getLogger(__name__)

Matching = Literal["exhaustive", "sequential"]
HINT_NAME = "splatpack_sfm.json"
_OUTPUT_NAME = re.compile(r"(database\.db|sparse|images|images_\d+|splatpack_sfm\.json)")


def require_pycolmap() -> ModuleType:
    """The ``pycolmap`` module, or a one-line error saying how to install it."""
    try:
        import pycolmap
    except ImportError:
        raise SplatpackError("structure from motion needs pycolmap: pip install 'splatpack[sfm]'") from None
    return pycolmap


@contextlib.contextmanager
def colmap_errors(pycolmap: ModuleType, images_dir: Path) -> Iterator[None]:
    """COLMAP's log at warnings and up; its failed checks (``RuntimeError``) as :class:`CaptureError`."""
    level, pycolmap.logging.minloglevel = pycolmap.logging.minloglevel, 1
    try:
        yield
    except RuntimeError as e:
        raise CaptureError(f"reconstruction failed: {e}", images_dir) from None
    finally:
        pycolmap.logging.minloglevel = level


def extract_features(
    pycolmap: ModuleType,
    db: Path,
    images_dir: Path,
    names: list[str],
    camera_mode: str = "SINGLE",
    camera_model: str = "SIMPLE_RADIAL",
    max_image_size: int = 3200,
) -> None:
    """SIFT features of ``images_dir/names`` into the database ``db`` (CPU); ``camera_mode`` is a
    :class:`pycolmap.CameraMode` name (``SINGLE``: one shared camera, ``PER_IMAGE``, ``AUTO``)."""
    log.info("sfm: extracting SIFT features from %d images in %s", len(names), images_dir)
    pycolmap.extract_features(
        db,
        images_dir,
        image_names=names,
        camera_mode=getattr(pycolmap.CameraMode, camera_mode),
        reader_options=pycolmap.ImageReaderOptions(camera_model=camera_model),
        extraction_options=pycolmap.FeatureExtractionOptions(max_image_size=max_image_size),
        device=pycolmap.Device.cpu,
    )


def match_features(pycolmap: ModuleType, db: Path, matching: Matching) -> None:
    """Match the database's features, all pairs (``exhaustive``) or neighbours in name order
    (``sequential``), and verify them geometrically (COLMAP's two-view geometry)."""
    log.info("sfm: %s matching", matching)
    match = pycolmap.match_exhaustive if matching == "exhaustive" else pycolmap.match_sequential
    match(db, device=pycolmap.Device.cpu)


@contextlib.contextmanager
def process_folder(
    images_dir: Path, out_dir: Path, downscale: DownscaleConfig, min_images: int = 2
) -> Iterator[tuple[Path, Path, list[str], int]]:
    """The output folder of a processing run, built aside: yields ``(tmp, photo_dir, names, K)``.

    ``photo_dir`` holds the photos the run reads: ``images_dir`` itself (linked as ``images``)
    or, for a downscale ``K > 1``, ``tmp/images_K``. The caller writes ``database.db`` and
    ``sparse/0`` into ``tmp`` and its stats into ``tmp/splatpack_sfm.json`` with
    :func:`write_hint`; on a clean exit ``tmp`` replaces ``out_dir``.
    """
    images_dir, out_dir = Path(images_dir).absolute(), Path(out_dir).absolute()
    if not images_dir.is_dir():
        raise CaptureError("images folder does not exist", images_dir)
    photos = list_images(images_dir)
    if len(photos) < min_images:
        raise CaptureError(f"structure from motion needs at least {min_images} images, found {len(photos)}", images_dir)
    if out_dir == images_dir or out_dir in images_dir.parents:
        raise SplatpackError(f"the output folder holds the images folder {images_dir}; give a new folder", out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / HINT_NAME).is_file():
        raise SplatpackError("exists and is not the output of splatpack process; give a new or empty folder", out_dir)
    factor = downscale.resolve(photos)
    with atomic_folder(out_dir, may_replace=lambda name: _OUTPUT_NAME.fullmatch(name) is not None) as tmp:
        if factor == 1:
            photo_dir = images_dir
            try:
                os.symlink(images_dir, tmp / "images", target_is_directory=True)
            except OSError:  # no symlinks here (e.g. Windows without rights): the json suffices
                pass
        else:
            photo_dir = tmp / f"images_{factor}"
            log.info("sfm: writing %d photos at 1/%d size to %s", len(photos), factor, out_dir / photo_dir.name)
            write_downscaled(photos, photo_dir, factor)
        yield tmp, photo_dir, [p.name for p in photos], factor


def write_hint(tmp: Path, out_dir: Path, photo_dir: Path, stats: dict) -> None:
    """``splatpack_sfm.json``: where the photos will be once ``tmp`` is ``out_dir``, and ``stats``."""
    final = out_dir.absolute() / photo_dir.name if photo_dir.parent == tmp else photo_dir
    (tmp / HINT_NAME).write_text(json.dumps({"images_dir": str(final), **stats}, indent=2))


def run_sfm(
    images_dir: str | Path,
    out_dir: str | Path,
    matching: Matching = "exhaustive",
    camera_model: str = "SIMPLE_RADIAL",
    single_camera: bool = True,
    max_image_size: int = 3200,
    downscale: DownscaleConfig | None = None,
) -> dict:
    """Reconstruct cameras and sparse points from ``images_dir`` into ``out_dir``.

    ``matching``: ``exhaustive`` (all pairs, best up to a few hundred images) or ``sequential``
    (neighbours in name order, for videos). ``camera_model``: a COLMAP model the readers support.
    ``single_camera``: all images share one camera. ``downscale``: reconstruct from ``images_K``
    copies. Returns stats: ``images``, ``registered``, ``points``, ``mean_reprojection_error``
    (px), ``models`` (reconstructions found), ``downscale``, ``seconds``, ``sparse_dir``.
    """
    pycolmap = require_pycolmap()
    images_dir, out_dir = Path(images_dir).absolute(), Path(out_dir).absolute()
    if matching not in ("exhaustive", "sequential"):
        raise SplatpackError(f"matching must be 'exhaustive' or 'sequential', got {matching!r}")
    if camera_model not in SUPPORTED_MODELS:
        raise SplatpackError(f"camera_model must be one of {', '.join(SUPPORTED_MODELS)}, got {camera_model!r}")
    t0 = time.perf_counter()
    with (
        process_folder(images_dir, out_dir, downscale or DownscaleConfig()) as (tmp, photo_dir, names, factor),
        colmap_errors(pycolmap, images_dir),
    ):
        db = tmp / "database.db"
        extract_features(
            pycolmap, db, photo_dir, names, "SINGLE" if single_camera else "AUTO", camera_model, max_image_size
        )
        match_features(pycolmap, db, matching)
        log.info("sfm: incremental mapping")
        registered = [0]

        def on_image() -> None:
            registered[0] += 1
            if registered[0] % 10 == 0:
                log.info("sfm: %d images registered", registered[0])

        with tempfile.TemporaryDirectory(dir=tmp, prefix=".mapper-") as mapper:  # its copy of every model
            models = pycolmap.incremental_mapping(db, photo_dir, mapper, next_image_callback=on_image)
        if not models:
            raise CaptureError(
                f"reconstruction failed: no model from {len(names)} images (too few matching features?)", images_dir
            )
        rec = max(models.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()))
        sparse = tmp / "sparse" / "0"
        sparse.mkdir(parents=True)
        rec.write(sparse)
        stats = {
            "images": len(names),
            "registered": rec.num_reg_images(),
            "points": rec.num_points3D(),
            "mean_reprojection_error": float(rec.compute_mean_reprojection_error()),
            "models": len(models),
            "downscale": factor,
            "seconds": round(time.perf_counter() - t0, 2),
            "sparse_dir": str(out_dir / "sparse" / "0"),
        }
        write_hint(tmp, out_dir, photo_dir, stats)
    log.info(
        "sfm: registered %d/%d images, %d points, %.2f px mean reprojection error, %.1f s",
        stats["registered"],
        stats["images"],
        stats["points"],
        stats["mean_reprojection_error"],
        stats["seconds"],
    )
    return stats
