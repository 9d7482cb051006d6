"""What ``splatpack view PATH`` opens and how it starts: the scene file (PATH itself, or the result
a training run wrote into the folder PATH) and its :class:`~splatpack.view.framing.Framing`.

A run folder is one that ``splatpack train`` wrote: ``scene.spk`` and/or ``point_cloud.ply`` next
to ``scene.json``. When both scene files are there (the ``sog`` preset), ``scene.spk`` is opened:
it is the file the run's metrics describe. The framing comes from the first of

1. the training cameras of the run's capture (``scene.json`` names its folder, format, downscale
   and test split; loading it reads the poses and image sizes, not the pixels);
2. the training cameras a compact ``.spk`` stores (up to 32, for baking its colour field);
3. the Gaussians themselves (:func:`~splatpack.view.framing.frame_points`), with the up axis of
   the run's capture format, else the RDF axes of every scene file.

The background is the one the run trained on (``white_background`` in ``scene.json``, or a
compact ``.spk``'s ``background``); otherwise the viewer's black.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splatpack.captures import load_capture
from splatpack.codecs import read_scene
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.formats import detect_format, load_scene
from splatpack.train.outputs import PLY_NAME, SCENE_NAME
from splatpack.view.framing import RDF_UP, Framing, capture_up, frame_cameras, frame_points

__all__ = ["RUN_SCENE_FILES", "SCENE_JSON", "ScenePoints", "ViewTarget", "resolve_target", "view_framing"]

SCENE_JSON = "scene.json"
RUN_SCENE_FILES = (SCENE_NAME, PLY_NAME)  # in order of preference
WHITE, BLACK = (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class ViewTarget:
    """The scene file to open and the training run folder it belongs to (None: a bare file)."""

    file: Path
    run_dir: Path | None = None


def resolve_target(path: str | Path) -> ViewTarget:
    """The scene file behind ``path``: a file as given (part of a run when it is a run's
    ``point_cloud.ply`` / ``scene.spk`` next to ``scene.json``), or a run folder's result."""
    p = Path(path)
    if not p.exists():
        raise SplatpackError("file does not exist", p)
    if p.is_dir():
        for name in RUN_SCENE_FILES:
            if (p / name).is_file():
                return ViewTarget(p / name, p)
        raise SplatpackError(
            f"is a folder without {' or '.join(RUN_SCENE_FILES)}; the viewer opens a scene file or a "
            "`splatpack train` output folder (a SOG folder: `splatpack export FOLDER -o scene.sog` first)",
            p,
        )
    in_run = p.name in RUN_SCENE_FILES and (p.parent / SCENE_JSON).is_file()
    return ViewTarget(p, p.parent if in_run else None)


@dataclass
class ScenePoints:
    """What framing needs of a scene file: centres [N, 3], opacities [N] (0..1), and what a
    compact ``.spk`` stores of its training (cameras as OpenCV c2w, K, height; background)."""

    means: np.ndarray
    opacities: np.ndarray
    cameras: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    background: tuple[float, float, float] | None = None


def scene_points(path: Path) -> ScenePoints:
    """Read a scene file's centres and opacities (a ``.spk`` is decoded without baking a colour
    field into SH); every problem in the file is a :class:`SplatpackError`."""
    if detect_format(path).name != "spk":
        gs = load_scene(path)
        return ScenePoints(gs.means.detach().numpy(), gs.alphas.detach().numpy())
    _, decoded = read_scene(path)
    if isinstance(decoded, GaussianSet):
        return ScenePoints(decoded.means.detach().numpy(), decoded.alphas.detach().numpy())
    points = ScenePoints(decoded.means.detach().numpy(), decoded.opacities.detach().numpy())
    views = getattr(decoded, "views", None)
    if views is not None and len(views):
        rows = np.asarray(views, np.float64)
        c2ws = np.linalg.inv(rows[:, :16].reshape(-1, 4, 4))  # stored as world-to-camera
        points.cameras = (c2ws, rows[:, 16:25].reshape(-1, 3, 3), rows[:, 26])
    bg = decoded.meta.get("background") if isinstance(decoded.meta, dict) else None
    if isinstance(bg, list) and len(bg) == 3 and all(isinstance(c, (int, float)) for c in bg):
        points.background = tuple(float(c) for c in bg)
    return points


def read_scene_json(run_dir: Path) -> tuple[dict | None, str | None]:
    """(the run's ``scene.json``, None), or (None, why it cannot be used)."""
    path = run_dir / SCENE_JSON
    try:
        scene = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"{path}: not readable ({type(e).__name__})"
    if not isinstance(scene, dict):
        return None, f"{path}: not a JSON object"
    return scene, None


def run_cameras(scene: dict) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray] | None, str | None]:
    """((c2w [M, 4, 4], K [M, 3, 3], heights [M]) of the run's training cameras, None), or
    (None, why they cannot be read: the capture moved, or ``scene.json`` lacks a field)."""
    try:
        capture = load_capture(
            scene["data"],
            scene.get("format"),
            downscale=int(scene.get("downscale", 1)),
            test_every=int(scene.get("test_every", 8)),
        )
    except (KeyError, TypeError, ValueError, OSError, SplatpackError) as e:
        return None, f"the training cameras cannot be read ({e})"
    frames = capture.train or capture.test
    if not frames:
        return None, "the run's capture has no cameras"
    return (
        np.stack([f.camtoworld for f in frames]),
        np.stack([f.K for f in frames]),
        np.array([f.height for f in frames], np.float64),
    ), None


def view_framing(target: ViewTarget, points: ScenePoints) -> tuple[Framing, list[str]]:
    """The start view of ``target`` whose file holds ``points``, and notes on what could not be
    used (for a warning: the framing then falls back to the next source)."""
    notes: list[str] = []
    scene = None
    if target.run_dir is not None:
        scene, why = read_scene_json(target.run_dir)
        if why:
            notes.append(why)
    cameras = None
    if scene is not None:
        cameras, why = run_cameras(scene)
        if why:
            notes.append(why)
    cameras = cameras or points.cameras
    if cameras is not None:
        framing = frame_cameras(*cameras, means=points.means, opacities=points.opacities)
    else:
        up = capture_up(scene.get("format")) if scene is not None else RDF_UP
        framing = frame_points(points.means, points.opacities, up=up)
    background = points.background
    if scene is not None and isinstance(scene.get("white_background"), bool):
        background = WHITE if scene["white_background"] else BLACK
    return framing.with_background(background), notes
