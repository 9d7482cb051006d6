"""Known camera poses for a folder of photos, read from another capture's pose file.

:func:`read_pose_file` reads the cameras (intrinsics, lens distortion, OpenCV camera-to-world)
of ``FILE`` with the ordinary capture readers (:func:`splatpack.captures.load_capture`) and pairs
them with the photos of ``images_dir`` (:func:`splatpack.captures.images.list_images`):

* LLFF ``poses_bounds.npy``: the poses have no names; the reader pairs them with the photos in
  name order. It is run on a temporary capture folder that links ``poses_bounds.npy`` and
  ``images/ -> images_dir``, at the downscale that takes the poses' original size (stored in the
  file) to the photos' size.
* nerfstudio ``transforms.json``, Blender ``transforms_{train,test}.json`` (that split's frames;
  a Blender folder gives both splits) and COLMAP models (``sparse/0``, read with
  ``images_dir``): by file name. The json readers find their images where the json says.

Every photo needs exactly one pose and every pose its photo; otherwise :class:`CaptureError`.
The returned frames have the photos' own sizes (``K`` and a distortion's ``K_src`` scaled from
the size the reader gave), so they describe the files of ``images_dir`` as they are.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from splatpack.captures import detect_capture_format, load_capture
from splatpack.captures.images import image_size, list_images
from splatpack.captures.types import Frame
from splatpack.core.errors import CaptureError

__all__ = ["at_image_size", "read_pose_file"]


def read_pose_file(pose_file: str | Path, images_dir: str | Path) -> tuple[str, list[Frame]]:
    """``(format, frames)``: one frame per photo of ``images_dir``, in name order, at its own size."""
    pose_file, images_dir = Path(pose_file).absolute(), Path(images_dir).absolute()
    if not images_dir.is_dir():
        raise CaptureError("images folder does not exist", images_dir)
    photos = list_images(images_dir)
    if not photos:
        raise CaptureError("no images in the folder", images_dir)
    fmt = detect_capture_format(pose_file)
    if fmt == "llff":
        frames = _llff_frames(pose_file, photos)
    else:
        frames = _named_frames(fmt, pose_file, images_dir)
    by_name = _unique(frames, pose_file)
    missing = [p.name for p in photos if p.name not in by_name]
    extra = sorted(set(by_name) - {p.name for p in photos})
    problems = [f"no pose for {_few(missing)}"] if missing else []
    problems += [f"no image for the poses of {_few(extra)}"] if extra else []
    if problems:
        message = f"{len(photos)} images in {images_dir} but {len(frames)} poses: {'; '.join(problems)}"
        raise CaptureError(message, pose_file)
    return fmt, [at_image_size(by_name[p.name], p) for p in photos]


def _named_frames(fmt: str, pose_file: Path, images_dir: Path) -> list[Frame]:
    if fmt == "colmap":
        return load_capture(pose_file, fmt, test_every=0, images_dir=images_dir).frames
    capture = load_capture(pose_file, fmt, test_every=0)
    if fmt == "blender" and pose_file.is_file():  # the split this json holds
        return capture.train if pose_file.name == "transforms_train.json" else capture.test
    return capture.frames


def _llff_frames(pose_file: Path, photos: list[Path]) -> list[Frame]:
    """The LLFF reader on a temporary folder: ``poses_bounds.npy`` and ``images/`` as links."""
    root = pose_file if pose_file.is_dir() else pose_file.parent
    npy, images_dir = root / "poses_bounds.npy", photos[0].parent
    count, width = _llff_header(npy)
    if count is not None and count != len(photos):
        raise CaptureError(f"{len(photos)} images in {images_dir} but {count} poses", npy)
    downscale = 1 if width is None else max(1, math.ceil(width / image_size(photos[0])[0] - 1e-3))
    with tempfile.TemporaryDirectory(prefix="splatpack-poses-") as tmp:
        os.symlink(npy, Path(tmp) / "poses_bounds.npy")
        os.symlink(images_dir, Path(tmp) / "images", target_is_directory=True)
        try:
            frames = load_capture(tmp, "llff", downscale=downscale, test_every=0).frames
        except CaptureError as e:  # name the user's files, not the links
            message = str(e).replace(str(Path(tmp) / "images"), str(images_dir))
            raise CaptureError(message.replace(str(Path(tmp) / "poses_bounds.npy"), str(npy))) from None
        return [dataclasses.replace(f, image_path=images_dir / f.image_path.name) for f in frames]


def _llff_header(npy: Path) -> tuple[int | None, float | None]:
    """``(number of poses, original width)``: rows of the N × 17 array, and the ``w`` of the first
    3×5 pose's ``hwf`` column (row-major, index 9); ``None`` where the file does not say (the
    reader then reports why). The photos' downscale is that width over theirs, rounded up so
    that the reader never asks for a larger image than the photos."""
    try:
        pb = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None, None
    if pb.ndim != 2 or pb.shape[1] != 17 or len(pb) == 0 or not np.isfinite(pb[0, 9]) or pb[0, 9] < 1:
        return None, None
    return len(pb), float(pb[0, 9])


def _unique(frames: list[Frame], pose_file: Path) -> dict[str, Frame]:
    by_name: dict[str, Frame] = {}
    for f in frames:
        if f.name in by_name:
            hint = " (give one transforms_*.json)" if pose_file.is_dir() else ""
            raise CaptureError(f"two poses for images named {f.name}{hint}", pose_file)
        by_name[f.name] = f
    return by_name


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def at_image_size(frame: Frame, photo: Path) -> Frame:
    """``frame`` for ``photo`` at the photo's own size (intrinsics scaled per axis)."""
    w, h = image_size(photo)
    scale = np.diag([w / frame.width, h / frame.height, 1.0])
    dist = frame.distortion
    if dist is not None and dist.K_src is not None:
        dist = dataclasses.replace(dist, K_src=scale @ dist.K_src)
    return dataclasses.replace(frame, image_path=photo, K=scale @ frame.K, width=w, height=h, distortion=dist)
