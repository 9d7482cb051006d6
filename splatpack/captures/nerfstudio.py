"""nerfstudio captures: ``transforms.json`` (as written by ``ns-process-data``).

Format (nerfstudio ``data/dataparsers/nerfstudio_dataparser.py``): intrinsics ``fl_x, fl_y,
cx, cy, w, h`` and distortion ``k1..k4, p1, p2`` with a ``camera_model`` (``OPENCV`` default,
``PINHOLE``, ``SIMPLE_PINHOLE``), given at the top level and/or per frame (per-frame values
win). Each frame has a ``file_path`` relative to the json and a camera-to-world
``transform_matrix`` in OpenGL axes (converted to OpenCV by right-multiplying
``diag(1, -1, -1, 1)``). The poses keep nerfstudio's ``applied_transform`` world, which is also
the world of the optional ``ply_file_path`` point cloud, so both are used as they are.

With ``downscale > 1`` an ``images_{downscale}/<name>`` sibling of the image folder is used when
it exists (nerfstudio's convention), else the image is resized on load. Frames are sorted by
file path; the json's ``train_filenames``/``test_filenames`` define the split when present,
otherwise every ``test_every``-th frame is a test frame. Fisheye and ``k3``/``k4`` are rejected.
A frame's ``mask_path`` (relative to the json) is its object mask; without one, a ``masks/``
folder beside the images is searched (:mod:`splatpack.captures.masks`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from splatpack.captures.blender import pose, read_json
from splatpack.captures.images import image_size, intrinsics_matrix, scaled_size, split_frames
from splatpack.captures.masks import find_mask
from splatpack.captures.types import Capture, Distortion, Frame
from splatpack.core.errors import CaptureError


def _read_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from plyfile import PlyData

    try:
        v = PlyData.read(str(path))["vertex"]
        xyz = np.stack([v["x"], v["y"], v["z"]], axis=1).astype(np.float32)
        names = v.data.dtype.names
        if {"red", "green", "blue"} <= set(names):
            rgb = np.stack([v["red"], v["green"], v["blue"]], axis=1).astype(np.uint8)
        else:
            rgb = np.full_like(xyz, 128, dtype=np.uint8)
    except FileNotFoundError:
        raise CaptureError("point cloud not found", path) from None
    except Exception as e:  # plyfile raises assorted errors on bad input
        raise CaptureError(f"cannot read PLY point cloud: {e}", path) from None
    return xyz, rgb


def _frame(fr: dict, meta: dict, json_path: Path, downscale: int) -> Frame:
    def get(key: str, default=None):
        return fr.get(key, meta.get(key, default))

    path = Path(fr["file_path"])
    path = path if path.is_absolute() else json_path.parent / path
    small = path.parent.with_name(f"{path.parent.name}_{downscale}") / path.name
    if downscale > 1 and small.is_file():
        path = small
    try:
        if get("w") is None or get("h") is None:
            W, H = image_size(path)
        else:
            W, H = int(get("w")), int(get("h"))
        fx = float(get("fl_x"))
        fy, cx, cy = float(get("fl_y", fx)), float(get("cx", W / 2)), float(get("cy", H / 2))
        k1, k2, k3, k4, p1, p2 = (float(get(k, 0.0)) for k in ("k1", "k2", "k3", "k4", "p1", "p2"))
    except (TypeError, ValueError) as e:
        raise CaptureError(f"frame {fr['file_path']!r}: missing or invalid intrinsics ({e})", json_path) from None
    model = str(get("camera_model", "OPENCV"))
    if model not in ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE"):
        raise CaptureError(f"unsupported camera_model {model} (supported: OPENCV, PINHOLE, SIMPLE_PINHOLE)", json_path)
    if model == "OPENCV" and (k3 or k4):
        raise CaptureError(f"frame {fr['file_path']!r}: k3/k4 distortion is not supported", json_path)
    w, h = scaled_size(path, (W, H), downscale)
    sx, sy = w / W, h / H
    K = intrinsics_matrix(fx * sx, fy * sy, cx * sx, cy * sy)
    dist = None
    if model == "OPENCV" and any((k1, k2, p1, p2)):
        dist = Distortion("OPENCV", k1, k2, p1, p2, K_src=K.copy())
    mask = fr.get("mask_path")
    if isinstance(mask, str):
        mask_path = Path(mask) if Path(mask).is_absolute() else json_path.parent / mask
        if not mask_path.is_file():
            raise CaptureError(f"frame {fr['file_path']!r}: mask not found: {mask}", json_path)
        mask_path = mask_path.absolute()
    else:
        mask_path = find_mask(path)
    return Frame(path.absolute(), pose(fr, json_path), K, w, h, dist, mask_path)


def load_nerfstudio(path: Path, downscale: int = 1, test_every: int = 8) -> Capture:
    """``path``: the capture folder (holding ``transforms.json``) or the json file itself."""
    path = Path(path)
    json_path = path / "transforms.json" if path.is_dir() else path
    meta = read_json(json_path)
    for fr in meta["frames"]:
        if not isinstance(fr, dict) or not isinstance(fr.get("file_path"), str):
            raise CaptureError(f"frame without file_path: {str(fr)[:80]}", json_path)
    raw = sorted(meta["frames"], key=lambda fr: fr["file_path"])
    frames = [_frame(fr, meta, json_path, downscale) for fr in raw]
    if "train_filenames" in meta and "test_filenames" in meta:
        test_names = {os.path.normpath(n) for n in meta["test_filenames"]}
        is_test = [os.path.normpath(fr["file_path"]) in test_names for fr in raw]
        test = [f for f, t in zip(frames, is_test) if t]
        train = [f for f, t in zip(frames, is_test) if not t]
    else:
        train, test = split_frames(frames, test_every, json_path)
    points = colors = None
    if meta.get("ply_file_path"):
        points, colors = _read_ply(json_path.parent / meta["ply_file_path"])
    root = json_path.parent
    return Capture(root.name, "nerfstudio", root, train, test, points, colors)
