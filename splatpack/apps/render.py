"""``splatpack render``: test views or an orbit video of a trained scene.

Camera paths: for captures whose cameras surround the scene (object captures) a 360° orbit
around the point the cameras look at; for forward-facing captures (LLFF) NeRF's spiral path
(``render_path_spiral``) around the average pose. Videos are written with imageio-ffmpeg.
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from rich.progress import track

from splatpack.captures import Capture, load_capture
from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.atomic import atomic_write
from splatpack.core.images import save_png, to_uint8
from splatpack.formats import load_scene
from splatpack.render import render_image
from splatpack.render.camera import camera_path, look_at


def _load_run(run_dir: Path) -> tuple[GaussianSet, dict | None]:
    """(GaussianSet, scene dict or None) from a training folder (its ``point_cloud.ply``, or the
    ``scene.spk`` that compact and full runs write instead; a compact scene's colour field is
    baked into SH, as ``splatpack decompress`` does) or a scene file of any format splatpack reads."""
    if run_dir.is_file():
        return load_scene(run_dir), None
    for name in ("point_cloud.ply", "scene.spk"):
        if (run_dir / name).is_file():
            scene_file = run_dir / "scene.json"
            scene = _read_scene_json(scene_file) if scene_file.is_file() else None
            return load_scene(run_dir / name), scene
    raise SplatpackError("no point_cloud.ply or scene.spk here (expected a `splatpack train` output folder)", run_dir)


SCENE_KEYS = {"data": str, "format": str, "downscale": int, "test_every": int}


def _read_scene_json(path: Path) -> dict:
    """A run's ``scene.json`` (what capture it was trained on), checked: one line for a truncated or
    incomplete file."""
    try:
        scene = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise SplatpackError(f"not a readable scene description ({type(e).__name__})", path) from None
    if not isinstance(scene, dict):
        raise SplatpackError("not a scene description (a JSON object is expected)", path)
    for key, kind in SCENE_KEYS.items():
        if not isinstance(scene.get(key), kind) or isinstance(scene.get(key), bool):
            raise SplatpackError(f"'{key}' is missing or not a {kind.__name__}", path)
    return scene


@torch.no_grad()
def render_run(
    run_dir: Path,
    out: Path | None = None,
    orbit: bool = False,
    frames: int = 120,
    fps: int = 30,
    backend: str = "auto",
    width: int | None = None,
    height: int | None = None,
) -> list[Path]:
    """Render a run's test views (PNG) or an orbit video (MP4); returns the written paths."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise SplatpackError("path does not exist", run_dir)
    gs, scene = _load_run(run_dir)
    if len(gs) == 0:
        raise SplatpackError("the scene holds no Gaussians to render", run_dir)
    out = Path(out) if out else (run_dir.parent if run_dir.is_file() else run_dir) / "renders"
    capture = None
    if scene is not None:
        capture = load_capture(
            scene["data"], scene["format"], downscale=scene["downscale"], test_every=scene["test_every"]
        )
    bg = [1.0, 1.0, 1.0] if (scene or {}).get("white_background") else [0.0, 0.0, 0.0]
    if not orbit:
        if capture is None:
            msg = "test views need the capture: render a training output folder, or use --orbit"
            raise SplatpackError(msg, run_dir)
        paths = []
        for i, fr in enumerate(capture.test or capture.train):
            p = out / f"{i:04d}_{Path(fr.name).stem}.png"
            save_png(p, render_image(gs, fr.camtoworld, fr.K, fr.width, fr.height, bg, backend))
            paths.append(p)
        return paths
    poses, K, w, h = orbit_path(gs, capture, frames, width, height)
    imgs = [
        to_uint8(render_image(gs, p, K, w, h, bg, backend)) for p in track(poses, description="orbit", transient=True)
    ]
    path = out / "orbit.mp4"
    with atomic_write(path, "wb") as f:
        f.write(iio.imwrite("<bytes>", np.stack(imgs), extension=".mp4", fps=fps, codec="libx264", macro_block_size=1))
    return [path]


def orbit_path(gs: GaussianSet, capture: Capture | None, frames: int, width: int | None, height: int | None):
    """(poses [frames, 4, 4], K, width, height) of the video: the capture's camera path
    (:func:`~splatpack.render.camera.camera_path`) at its first frame's intrinsics, or for a bare
    scene file (z up assumed) an orbit of the Gaussians' bulk from 2.5× its radius."""
    if capture is not None:
        f0 = capture.frames[0]
        K, w, h = f0.K.copy(), width or f0.width, height or f0.height
        K[0] *= w / f0.width
        K[1] *= h / f0.height
        return camera_path(np.stack([f.camtoworld for f in capture.frames]), frames), K, w, h
    pts = gs.means.numpy()
    centre = np.median(pts, 0)
    r = 2.5 * np.percentile(np.linalg.norm(pts - centre, axis=1), 90)
    w, h = width or 512, height or 512
    K = np.array([[0.9 * w, 0, w / 2], [0, 0.9 * w, h / 2], [0, 0, 1.0]])
    up = np.array([0.0, 0.0, 1.0])
    eyes = [
        centre + r * np.array([np.cos(t), np.sin(t), 0.4]) / np.sqrt(1.16)
        for t in np.linspace(0, 2 * np.pi, frames, endpoint=False)
    ]
    return np.stack([look_at(eye, centre, up) for eye in eyes]), K, w, h
