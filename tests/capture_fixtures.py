"""Small captures written on the fly for tests: COLMAP models (bin/txt), Blender folders, PNGs."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation

MODEL_IDS = {"SIMPLE_PINHOLE": 0, "PINHOLE": 1, "SIMPLE_RADIAL": 2, "RADIAL": 3, "OPENCV": 4, "OPENCV_FISHEYE": 5}

# ------------------------------------------------------------------------------ fixtures


def look_at_c2w(eye: np.ndarray, target=np.zeros(3)) -> np.ndarray:
    """OpenCV camera-to-world looking from ``eye`` at ``target`` (y down)."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    c2w[:3, 3] = eye
    return c2w


def write_png(path: Path, w: int, h: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def write_colmap(model: Path, cams: list, images: list, xyz: np.ndarray, rgb: np.ndarray, fmt: str) -> None:
    """cams: (id, model, w, h, params); images: (id, c2w, camera_id, name)."""
    model.mkdir(parents=True, exist_ok=True)

    def w2c(c2w):
        R, t = c2w[:3, :3].T, -c2w[:3, :3].T @ c2w[:3, 3]
        x, y, z, w = Rotation.from_matrix(R).as_quat()
        return [w, x, y, z], t

    if fmt == "bin":
        b = struct.pack("<Q", len(cams))
        for cid, m, w, h, p in cams:
            b += struct.pack(f"<iiQQ{len(p)}d", cid, MODEL_IDS[m], w, h, *p)
        (model / "cameras.bin").write_bytes(b)
        b = struct.pack("<Q", len(images))
        for iid, c2w, cid, name in images:
            q, t = w2c(c2w)
            b += struct.pack("<I7dI", iid, *q, *t, cid) + name.encode() + b"\0"
            b += struct.pack("<Q", 2) + struct.pack("<ddqddq", 1.0, 2.0, 0, 3.0, 4.0, -1)
        (model / "images.bin").write_bytes(b)
        b = struct.pack("<Q", len(xyz))
        for i, (p, c) in enumerate(zip(xyz, rgb)):
            b += struct.pack("<Q3d3BdQ", i + 1, *p, *c, 0.5, 2) + struct.pack("<IIII", 1, 0, 2, 0)
        (model / "points3D.bin").write_bytes(b)
    else:

        def num(values) -> str:
            return " ".join(repr(float(v)) for v in values)

        lines = ["# Camera list", *(f"{c} {m} {w} {h} {num(p)}" for c, m, w, h, p in cams)]
        (model / "cameras.txt").write_text("\n".join(lines) + "\n")
        lines = ["# Image list with two lines of data per image:"]
        for k, (iid, c2w, cid, name) in enumerate(images):
            q, t = w2c(c2w)
            lines += [f"{iid} {num([*q, *t])} {cid} {name}", "" if k % 2 else "1.0 2.0 -1"]
        (model / "images.txt").write_text("\n".join(lines) + "\n")
        lines = ["# 3D point list"]
        lines += [f"{i + 1} {num(p)} {c[0]} {c[1]} {c[2]} 0.5 1 0 2 0" for i, (p, c) in enumerate(zip(xyz, rgb))]
        (model / "points3D.txt").write_text("\n".join(lines) + "\n")


def make_colmap(
    root: Path, fmt: str = "bin", n: int = 5, size=(16, 12), model="PINHOLE", params=None, images: str | None = "images"
):
    """A tiny COLMAP capture at ``root``; returns (c2ws by name, xyz, rgb)."""
    w, h = size
    params = params or {"PINHOLE": [20.0, 21.0, 8.0, 6.0], "SIMPLE_RADIAL": [20.0, 8.0, 6.0, 0.05]}.get(model)
    c2ws, ims = {}, []
    for i in range(n):
        a = 2 * math.pi * i / n
        name = f"img{(i * 3) % n:03d}.png"  # ids not in name order
        c2ws[name] = look_at_c2w(np.array([4 * math.cos(a), 4 * math.sin(a), 1.0]))
        ims.append((i + 1, c2ws[name], 1, name))
        if images:
            write_png(root / images / name, w, h, seed=i)
    rng = np.random.default_rng(0)
    xyz, rgb = rng.normal(size=(30, 3)).astype(np.float32), rng.integers(0, 256, (30, 3), dtype=np.uint8)
    write_colmap(root / "sparse/0", [(1, model, w, h, params)], ims, xyz, rgb, fmt)
    return c2ws, xyz, rgb


def make_blender(root: Path, n_train=3, n_test=2, size=2, angle=0.8):
    poses = {}
    for split, n in (("train", n_train), ("test", n_test)):
        frames = []
        for i in range(n):
            m = np.eye(4)
            m[:3, 3] = [i, 2.0, 3.0]
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": m.tolist()})
            poses[f"{split}/r_{i}"] = m
            write_png(root / split / f"r_{i}.png", size, size, channels=4, seed=i)
        (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": angle, "frames": frames}))
    return poses


# ----------------------------------------------------------------------------- COLMAP
