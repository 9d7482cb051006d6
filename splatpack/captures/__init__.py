"""Capture readers: posed images (+ SfM points) from Blender, nerfstudio, LLFF and COLMAP data.

``load_capture(path)`` detects the format (:func:`detect_capture_format`) and returns a
:class:`Capture` whose frames use OpenCV camera-to-world poses and pinhole ``K`` at the loaded
resolution (see :mod:`splatpack.captures.types`); pixels are read with :func:`load_image`.
"""

from __future__ import annotations

from pathlib import Path

from splatpack.captures.blender import load_blender
from splatpack.captures.colmap import load_colmap
from splatpack.captures.images import load_image
from splatpack.captures.llff import load_llff
from splatpack.captures.nerfstudio import load_nerfstudio
from splatpack.captures.types import Capture, Distortion, Frame
from splatpack.core.errors import CaptureError

__all__ = ["FORMATS", "Capture", "Distortion", "Frame", "detect_capture_format", "load_capture", "load_image"]

FORMATS = ("blender", "nerfstudio", "llff", "colmap")
# what marks each format in a capture folder, in order of precedence
_MARKERS = {
    "blender": ("transforms_train.json",),
    "nerfstudio": ("transforms.json",),
    "llff": ("poses_bounds.npy",),
    "colmap": tuple(f"{d}cameras.{ext}" for d in ("sparse/0/", "sparse/", "") for ext in ("bin", "txt")),
}


def detect_capture_format(path: str | Path) -> str:
    """The format of a capture folder (or of one of its marker files, e.g. ``transforms.json``)."""
    path = Path(path)
    if not path.exists():
        raise CaptureError("path does not exist", path)
    if path.is_file():
        if path.name in ("transforms_train.json", "transforms_test.json", "transforms_val.json"):
            return "blender"
        if path.suffix == ".json":
            return "nerfstudio"
        for fmt in ("llff", "colmap"):
            if path.name in _MARKERS[fmt]:
                return fmt
        raise CaptureError("not a capture file: expected a transforms json, poses_bounds.npy, cameras.{bin,txt}", path)
    for fmt, markers in _MARKERS.items():
        if any((path / m).is_file() for m in markers):
            return fmt
    looked = "; ".join(f"{fmt}: {', '.join(m)}" for fmt, m in _MARKERS.items())
    raise CaptureError(f"unknown capture format, looked for {looked}", path)


def load_capture(
    path: str | Path,
    format: str | None = None,
    downscale: int = 1,
    test_every: int = 8,
    images_dir: str | Path | None = None,
) -> Capture:
    """Load a capture folder.

    ``downscale``: integer factor (pre-downscaled ``images_N`` folders are used when present).
    ``test_every``: every n-th frame (``i % n == 0``) is a test frame (0 = none); Blender uses its
    own test json. ``images_dir``: where the images are (COLMAP only; default: searched).
    """
    path = Path(path)
    fmt = format or detect_capture_format(path)
    if fmt not in FORMATS:
        raise CaptureError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})", path)
    if not path.exists():
        raise CaptureError("path does not exist", path)
    if images_dir is not None and fmt != "colmap":
        raise CaptureError(f"images_dir is only supported for COLMAP captures, not {fmt}", path)
    if fmt == "nerfstudio":
        return load_nerfstudio(path, downscale, test_every)
    root = path.parent if path.is_file() else path
    if fmt == "blender":
        return load_blender(root, downscale)
    if fmt == "llff":
        return load_llff(root, downscale, test_every)
    return load_colmap(root, downscale, test_every, None if images_dir is None else Path(images_dir))
