"""Blender / NeRF-synthetic captures: ``transforms_{train,val,test}.json``.

Format (Mildenhall et al. 2020, NeRF's ``load_blender.py``): ``camera_angle_x`` is the
horizontal field of view, so ``fx = 0.5 W / tan(camera_angle_x / 2)`` (``fy`` from
``camera_angle_y`` when given, else ``fy = fx``), principal point at the image centre. Each frame
has a ``file_path`` relative to the json, usually without extension (``.png`` is appended when the
file lacks one), and a 4×4 camera-to-world ``transform_matrix`` in OpenGL/Blender camera axes
(x right, y up, z back), converted to OpenCV by right-multiplying ``diag(1, -1, -1, 1)``.
Train frames come from ``transforms_train.json``, test frames from ``transforms_test.json`` (else
``transforms_val.json``). Images are RGBA, composited on white (``white_background``); there are
no SfM points (the trainer initialises randomly) and no near/far.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from splatpack.captures.images import intrinsics_matrix, scaled_size
from splatpack.captures.types import Capture, Frame
from splatpack.core.errors import CaptureError

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def read_json(path: Path) -> dict[str, Any]:
    """A transforms json as a dict with a non-empty ``frames`` list."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CaptureError("file not found", path) from None
    except (OSError, ValueError) as e:
        raise CaptureError(f"cannot read JSON: {e}", path) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list) or not meta["frames"]:
        raise CaptureError("no frames: expected a non-empty 'frames' list", path)
    return meta


def pose(frame: dict, path: Path) -> np.ndarray:
    """OpenCV camera-to-world from a frame's OpenGL ``transform_matrix`` (3×4 or 4×4)."""
    try:
        m = np.asarray(frame["transform_matrix"], dtype=np.float64)
        if m.shape not in ((3, 4), (4, 4)) or not np.all(np.isfinite(m)):
            raise ValueError(f"shape {m.shape}")
    except (KeyError, TypeError, ValueError) as e:
        raise CaptureError(f"frame {frame.get('file_path')!r}: bad transform_matrix ({e})", path) from None
    c2w = np.eye(4)
    c2w[:3] = m[:3]
    return c2w @ OPENGL_TO_OPENCV


def _frames(json_path: Path, downscale: int) -> list[Frame]:
    meta = read_json(json_path)
    try:
        ax = float(meta["camera_angle_x"])
        ay = float(meta["camera_angle_y"]) if "camera_angle_y" in meta else None
    except (KeyError, TypeError, ValueError):
        raise CaptureError("missing or invalid camera_angle_x", json_path) from None
    frames = []
    for fr in meta["frames"]:
        if not isinstance(fr, dict) or not isinstance(fr.get("file_path"), str):
            raise CaptureError(f"frame without file_path: {str(fr)[:80]}", json_path)
        path = json_path.parent / fr["file_path"]
        if (not path.is_file() and path.with_name(path.name + ".png").is_file()) or not path.suffix:
            path = path.with_name(path.name + ".png")
        w, h = scaled_size(path, None, downscale)
        fx = 0.5 * w / math.tan(0.5 * ax)
        fy = fx if ay is None else 0.5 * h / math.tan(0.5 * ay)
        K = intrinsics_matrix(fx, fy, w / 2, h / 2)
        frames.append(Frame(path.absolute(), pose(fr, json_path), K, w, h))
    return frames


def load_blender(root: Path, downscale: int = 1) -> Capture:
    root = Path(root)
    train = _frames(root / "transforms_train.json", downscale)
    test_json = next((p for p in (root / "transforms_test.json", root / "transforms_val.json") if p.is_file()), None)
    test = _frames(test_json, downscale) if test_json else []
    return Capture(root.name, "blender", root, train, test, white_background=True)
