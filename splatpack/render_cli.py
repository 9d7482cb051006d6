"""``splatpack render``: test views or an orbit video of a trained scene.

Camera paths: for captures whose cameras surround the scene (object captures) a 360° orbit
around the point the cameras look at; for forward-facing captures (LLFF) NeRF's spiral path
(``render_path_spiral``) around the average pose. Videos are written with imageio-ffmpeg.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from splatpack.errors import SplatpackError
from splatpack.io import atomic_write
from splatpack.model import GaussianSet
from splatpack.render import rasterize


def focus_point(c2ws: np.ndarray) -> np.ndarray:
    """Least-squares point closest to all optical axes (OpenCV: the +z column)."""
    A, b = np.zeros((3, 3)), np.zeros(3)
    for m in c2ws:
        d = m[:3, 2] / np.linalg.norm(m[:3, 2])
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ m[:3, 3]
    return np.linalg.lstsq(A, b, rcond=None)[0]


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world looking from ``eye`` at ``target`` with world ``up`` at the top of
    the screen: x (right) = forward × up, y (down) = forward × right."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-8:
        x = np.cross(z, np.array([1.0, 0.0, 0.0]))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
    return m


def frame_gaussians(means: np.ndarray, fov_degrees: float) -> tuple[np.ndarray, float]:
    """(centre, distance): the median of ``means`` [N, 3] and how far from it a camera with that
    field of view must stand to see the central 80 % of them."""
    m = np.asarray(means, dtype=np.float64)
    centre = np.median(m, axis=0)
    radius = float(np.percentile(np.linalg.norm(m - centre, axis=1), 80))
    return centre, max(radius, 1e-3) / math.sin(math.radians(fov_degrees) / 2) * 1.05


def camera_path(c2ws: np.ndarray, n: int) -> np.ndarray:
    """An orbit (cameras all around) or a spiral (forward-facing) through ``n`` poses."""
    centre = focus_point(c2ws)
    up = -c2ws[:, :3, 1].mean(0)
    up = up / np.linalg.norm(up)
    offsets = c2ws[:, :3, 3] - centre
    dirs = offsets / np.linalg.norm(offsets, axis=1, keepdims=True)
    spread = np.degrees(np.arccos(np.clip(dirs @ dirs.mean(0) / np.linalg.norm(dirs.mean(0)), -1, 1))).max()
    if spread > 60:  # cameras around the scene: orbit at the mean elevation and distance
        radius = np.linalg.norm(offsets, axis=1).mean()
        height = float(np.mean(offsets @ up))
        ref = offsets[0] - (offsets[0] @ up) * up
        ref = ref / np.linalg.norm(ref)
        side = np.cross(up, ref)
        ring = np.sqrt(max(radius**2 - height**2, 1e-6))
        poses = []
        for t in np.linspace(0, 2 * np.pi, n, endpoint=False):
            eye = centre + up * height + ring * (np.cos(t) * ref + np.sin(t) * side)
            poses.append(look_at(eye, centre, up))
        return np.stack(poses)
    # forward-facing: spiral around the mean camera, radii from the camera spread
    mean = c2ws[:, :3, 3].mean(0)
    fwd = c2ws[:, :3, 2].mean(0)
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, -up)
    right = right / np.linalg.norm(right)
    cam_up = np.cross(right, fwd)
    rads = np.percentile(np.abs(c2ws[:, :3, 3] - mean) @ np.stack([right, cam_up, fwd]).T, 90, axis=0)
    target = mean + fwd * np.linalg.norm(centre - mean)
    poses = []
    for t in np.linspace(0, 4 * np.pi, n, endpoint=False):  # two turns, as NeRF's spiral
        eye = mean + rads[0] * np.cos(t) * right + rads[1] * np.sin(t) * cam_up + rads[2] * 0.5 * np.sin(0.5 * t) * fwd
        poses.append(look_at(eye, target, up))
    return np.stack(poses)


def _load_run(run_dir: Path):
    """(GaussianSet, scene dict or None) from a training folder (its ``point_cloud.ply``, or the
    ``scene.spk`` that compact and full runs write instead; a compact scene's colour field is
    baked into SH, as ``splatpack decompress`` does) or a scene file of any format splatpack reads."""
    from splatpack.spk_cli import load_gaussians

    if run_dir.is_file():
        return load_gaussians(run_dir), None
    for name in ("point_cloud.ply", "scene.spk"):
        if (run_dir / name).is_file():
            scene_file = run_dir / "scene.json"
            scene = json.loads(scene_file.read_text()) if scene_file.is_file() else None
            return load_gaussians(run_dir / name), scene
    raise SplatpackError("no point_cloud.ply or scene.spk here (expected a `splatpack train` output folder)", run_dir)


def render_image(gs: GaussianSet, c2w: np.ndarray, K: np.ndarray, width: int, height: int, background, backend="auto"):
    dev = "cuda" if backend == "cuda" or (backend == "auto" and torch.cuda.is_available()) else "cpu"
    g = gs.to(dev)
    vm = torch.from_numpy(np.linalg.inv(c2w)).float().to(dev)
    img, _, _ = rasterize(
        g.means, g.quats, g.linear_scales, g.alphas, g.sh, vm, torch.from_numpy(K).float().to(dev), width, height,
        sh_degree=g.sh_degree, background=torch.as_tensor(background, dtype=torch.float32, device=dev), backend=backend,
    )  # fmt: skip
    return img.clamp(0, 1)


@torch.no_grad()
def render_run(run_dir: Path, out: Path | None = None, orbit: bool = False, frames: int = 120, fps: int = 30,
               backend: str = "auto", width: int | None = None, height: int | None = None) -> list[Path]:  # fmt: skip
    """Render a run's test views (PNG) or an orbit video (MP4); returns the written paths."""
    import imageio.v3 as iio

    from splatpack.captures import load_capture
    from splatpack.train.trainer import save_png

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise SplatpackError("path does not exist", run_dir)
    gs, scene = _load_run(run_dir)
    out = Path(out) if out else (run_dir.parent if run_dir.is_file() else run_dir) / "renders"
    capture = None
    if scene is not None:
        capture = load_capture(scene["data"], scene["format"], downscale=scene["downscale"], test_every=scene["test_every"])
    bg = [1.0, 1.0, 1.0] if (scene or {}).get("white_background") else [0.0, 0.0, 0.0]
    if not orbit:
        if capture is None:
            raise SplatpackError("test views need the capture: render a training output folder, or use --orbit", run_dir)
        paths = []
        for i, fr in enumerate(capture.test or capture.train):
            p = out / f"{i:04d}_{Path(fr.name).stem}.png"
            save_png(p, render_image(gs, fr.camtoworld, fr.K, fr.width, fr.height, bg, backend))
            paths.append(p)
        return paths
    if capture is not None:
        f0 = capture.frames[0]
        K, w, h = f0.K.copy(), width or f0.width, height or f0.height
        K[0] *= w / f0.width
        K[1] *= h / f0.height
        poses = camera_path(np.stack([f.camtoworld for f in capture.frames]), frames)
    else:  # a bare PLY (z up assumed): orbit the Gaussians' bulk from 2.5× its radius
        pts = gs.means.numpy()
        centre = np.median(pts, 0)
        r = 2.5 * np.percentile(np.linalg.norm(pts - centre, axis=1), 90)
        w, h = width or 512, height or 512
        K = np.array([[0.9 * w, 0, w / 2], [0, 0.9 * w, h / 2], [0, 0, 1.0]])
        ts = np.linspace(0, 2 * np.pi, frames, endpoint=False)
        up = np.array([0.0, 0.0, 1.0])
        poses = np.stack([look_at(centre + r * np.array([np.cos(t), np.sin(t), 0.4]) / np.sqrt(1.16), centre, up) for t in ts])
    from rich.progress import track

    imgs = [
        (render_image(gs, p, K, w, h, bg, backend).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        for p in track(poses, description="orbit", transient=True)
    ]
    path = out / "orbit.mp4"
    with atomic_write(path, "wb") as f:
        f.write(iio.imwrite("<bytes>", np.stack(imgs), extension=".mp4", fps=fps, codec="libx264", macro_block_size=1))
    return [path]
