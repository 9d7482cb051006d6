"""Built-in synthetic scene: a small multi-view capture generated at run time, no download.

:func:`make_synthetic_scene` ray-casts a fixed analytic object (a textured box pedestal with
three spheres on and above it) with vectorised numpy and writes it in the **Blender /
NeRF-synthetic** format, so it is read by the ordinary Blender reader::

    out_dir/
        transforms_train.json   {"camera_angle_x": ..., "frames": [{"file_path": "train/r_0",
        transforms_test.json                                      "transform_matrix": 4x4}, ...]}
        train/r_0.png ...       RGBA, straight alpha, transparent (alpha 0) background
        test/r_0.png ...
        splatpack_synthetic.json  stamp: generator version + parameters (written last)

Conventions are Blender's: the world is **z-up**, ``transform_matrix`` is camera-to-world with
OpenGL camera axes (x right, y up, z backwards; the camera looks along -z). Train cameras lie on
a Fibonacci spiral over the upper hemisphere (radius 4, looking at the origin), test cameras on
a ring at 30° elevation whose azimuths differ from every train view. The object fits in
``[-1.2, 1.2]^3`` and in every view (``camera_angle_x`` is lego's 0.6911 rad).

Shading: Lambertian from one directional light with hard shadows, ambient term, and a Phong
highlight (view-dependent) on the spheres; 2×2 supersampling gives anti-aliased colour and alpha.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from splatpack.core.errors import SplatpackError

__all__ = [
    "BOX_MAX",
    "BOX_MIN",
    "CAMERA_ANGLE_X",
    "CAMERA_RADIUS",
    "DEFAULT_SCENE_NAME",
    "GENERATOR_VERSION",
    "SPHERES",
    "STAMP_NAME",
    "Sphere",
    "default_scene_dir",
    "ensure_default_scene",
    "make_synthetic_scene",
    "opengl_look_at",
    "render_view",
]

DEFAULT_SCENE_NAME = "default"
GENERATOR_VERSION = 1  # bump whenever the output changes; stale cached scenes are regenerated
STAMP_NAME = "splatpack_synthetic.json"
CAMERA_ANGLE_X = 0.6911112070083618  # horizontal field of view (rad) of the NeRF "lego" scene
CAMERA_RADIUS = 4.0


@dataclass(frozen=True)
class Sphere:
    """An analytic sphere; ``texture`` selects its procedural colour (see ``_sphere_albedo``)."""

    center: tuple[float, float, float]
    radius: float
    texture: str  # "rainbow" | "beachball" | "red"


#: The three spheres: a large one with a smooth colour gradient resting on the pedestal, a
#: beach-ball striped one, and a small red-orange one floating above (never occluded from the
#: upper hemisphere, used by the tests to check the camera convention).
SPHERES: tuple[Sphere, ...] = (
    Sphere((-0.30, -0.15, 0.05), 0.40, "rainbow"),
    Sphere((0.30, 0.25, -0.10), 0.25, "beachball"),
    Sphere((0.25, 0.10, 0.70), 0.20, "red"),
)
#: The axis-aligned pedestal box: checkerboard top, differently striped sides.
BOX_MIN = np.array([-0.6, -0.6, -0.7])
BOX_MAX = np.array([0.6, 0.6, -0.35])
_LIGHT = np.array([0.45, -0.35, 1.0]) / np.linalg.norm([0.45, -0.35, 1.0])  # towards the light
_AMBIENT, _SPEC, _SHININESS = 0.28, 0.45, 40.0


# ----------------------------------------------------------------------------------- geometry
# Rays are stored as [3, N] arrays (one contiguous row per coordinate) for fast numpy loops.
_BOUND_R = 1.2  # radius of a sphere about the origin that contains the whole object


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _hit_sphere(o: np.ndarray, d: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    """Nearest ray parameter ``t > 0`` of rays ``o + t d`` (d unit, [3, N]) with a sphere, inf if none."""
    oc = o - c.reshape(3, 1)
    b = _dot(oc, d)
    disc = b * b - (_dot(oc, oc) - r * r)
    sq = np.sqrt(np.maximum(disc, 0.0))
    t = np.where(-b - sq > 1e-6, -b - sq, -b + sq)
    return np.where((disc >= 0) & (t > 1e-6), t, np.inf)


def _hit_box(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slab test against the box: entry ``t`` (inf if missed) and the entered face's axis (0, 1, 2)."""
    tn, tf = np.full(o.shape[1], -np.inf), np.full(o.shape[1], np.inf)
    axis = np.zeros(o.shape[1], dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(3):
            ta, tb = (BOX_MIN[k] - o[k]) / d[k], (BOX_MAX[k] - o[k]) / d[k]
            lo = np.fmin(ta, tb)
            axis = np.where(lo > tn, k, axis)
            tn, tf = np.fmax(tn, lo), np.fmin(tf, np.fmax(ta, tb))
    return np.where((tn <= tf) & (tn > 1e-6), tn, np.inf), axis


def _nearest(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit over all primitives: ``t``, primitive id (0 = box, 1.. = spheres), box face axis."""
    tb, axis = _hit_box(o, d)
    ts = np.stack([tb] + [_hit_sphere(o, d, np.asarray(s.center), s.radius) for s in SPHERES])
    prim = np.argmin(ts, axis=0)
    return np.take_along_axis(ts, prim[None], 0)[0], prim, axis


# ------------------------------------------------------------------------------------ shading
def _sphere_albedo(s: Sphere, n: np.ndarray) -> np.ndarray:
    """Procedural albedo [3, N] of sphere ``s`` at unit normals ``n`` [3, N]."""
    if s.texture == "rainbow":  # smooth colour gradient over the sphere
        return 0.95 * np.clip(0.55 + 0.4 * n * np.array([[1.0], [-1.0], [1.0]]), 0, 1)
    if s.texture == "beachball":  # 8 azimuthal gores alternating blue / yellow, white caps
        gore = np.floor((np.arctan2(n[1], n[0]) + math.pi) / (math.pi / 4)).astype(int) % 2
        col = np.where(gore == 0, [[0.15], [0.35], [0.9]], [[0.95], [0.8], [0.15]])
        return np.where(np.abs(n[2]) > 0.85, 0.95, col)
    g = 0.15 + 0.1 * (n[2] + 1)  # "red": red-orange with a vertical gradient
    return np.stack([np.full_like(g, 0.92), g, np.full_like(g, 0.08)])


_SIDE_COLORS = {
    (0, 1): [0.85, 0.3, 0.5],
    (0, -1): [0.3, 0.75, 0.3],
    (1, 1): [0.55, 0.35, 0.85],
    (1, -1): [0.9, 0.55, 0.2],
}


def _box_albedo(p: np.ndarray, axis: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Procedural albedo [3, N] of the box: checkerboard on top, diagonal stripes on the sides."""
    top = (np.floor(p[0] / 0.15) + np.floor(p[1] / 0.15)).astype(int) % 2
    out = np.where(top == 0, [[0.95], [0.92], [0.8]], [[0.1], [0.45], [0.45]])
    for (ax, sign), col in _SIDE_COLORS.items():
        m = (axis == ax) & (n[ax] == sign)
        stripe = np.floor((p[1 - ax, m] + p[2, m]) / 0.1).astype(int) % 2
        c = np.asarray(col)[:, None]
        out[:, m] = np.where(stripe == 0, c, 0.5 * c + 0.5)
    out[:, n[2] == -1] = 0.4  # bottom
    return out


def _shade(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trace rays ([3, N] each): RGB in [0, 1] [3, N] and a hit mask [N]."""
    t, prim, axis = _nearest(o, d)
    hit = np.isfinite(t)
    rgb = np.zeros(o.shape)
    dh = d[:, hit]
    p = o[:, hit] + t[hit] * dh
    pr, ax = prim[hit], axis[hit]
    n, alb, spec_w = np.zeros_like(p), np.zeros_like(p), np.zeros(p.shape[1])
    m = np.flatnonzero(pr == 0)
    center = 0.5 * (BOX_MIN + BOX_MAX)
    n[ax[m], m] = np.sign(p[ax[m], m] - center[ax[m]])
    alb[:, m] = _box_albedo(p[:, m], ax[m], n[:, m])
    for k, s in enumerate(SPHERES, start=1):
        m = pr == k
        n[:, m] = (p[:, m] - np.asarray(s.center)[:, None]) / s.radius
        alb[:, m] = _sphere_albedo(s, n[:, m])
        spec_w[m] = _SPEC
    light = _LIGHT[:, None]
    ndl = np.clip(_dot(n, light), 0.0, None)
    lit = np.isinf(_nearest(p + 1e-4 * n, np.broadcast_to(light, p.shape))[0]) & (ndl > 0)
    refl = 2 * ndl * n - light  # Phong: reflected light direction vs. direction to the eye
    spec = spec_w * np.clip(-_dot(refl, dh), 0, None) ** _SHININESS
    rgb[:, hit] = alb * (_AMBIENT + (1 - _AMBIENT) * ndl * lit) + spec * lit
    return np.clip(rgb, 0.0, 1.0), hit


# ------------------------------------------------------------------------------------ cameras
def opengl_look_at(eye: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """Camera-to-world 4×4 in OpenGL axes (Blender's transforms.json) for a camera at ``eye``
    looking at ``target`` (default: the origin), with world +z up on screen: the OpenCV pose of
    :func:`splatpack.render.camera.look_at` with its y and z axes negated."""
    eye = np.asarray(eye, dtype=np.float64)
    f = (np.zeros(3) if target is None else np.asarray(target)) - eye
    f /= np.linalg.norm(f)
    right = np.cross(f, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([right, np.cross(right, f), -f], axis=1)
    c2w[:3, 3] = eye
    return c2w


def _camera_positions(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train: Fibonacci spiral over elevations ~5°–72°; test: a ring at 30° elevation."""
    rng = np.random.default_rng(seed)
    phase, ring_phase = rng.uniform(0, 2 * math.pi, size=2)
    i = np.arange(n_train) + 0.5
    z = 0.08 + (0.95 - 0.08) * i / n_train  # uniform in z = uniform area on the sphere band
    az = phase + i * math.pi * (3 - math.sqrt(5))  # golden angle
    r = np.sqrt(1 - z * z)
    train = CAMERA_RADIUS * np.stack([r * np.cos(az), r * np.sin(az), z], axis=1)
    az = ring_phase + 2 * math.pi * (np.arange(n_test) + 0.5) / max(n_test, 1)
    el = math.radians(30.0)
    test = CAMERA_RADIUS * np.stack(
        [math.cos(el) * np.cos(az), math.cos(el) * np.sin(az), np.full(n_test, math.sin(el))], axis=1
    )
    return train, test


def render_view(
    c2w: np.ndarray, width: int, height: int, camera_angle_x: float = CAMERA_ANGLE_X, ss: int = 2
) -> np.ndarray:
    """Render the scene from OpenGL camera-to-world ``c2w``: uint8 RGBA [H, W, 4], straight alpha.

    ``ss × ss`` supersampling per pixel; colour is averaged over the samples that hit, alpha
    is the covered fraction. Pixel centres are at integer + 0.5, focal ``0.5 W / tan(fov/2)``.
    """
    f = 0.5 * width / math.tan(0.5 * camera_angle_x)
    off = (np.arange(ss) + 0.5) / ss
    u = (np.arange(width)[None, :, None, None] + off[None, None, None, :] - 0.5 * width) / f
    v = (np.arange(height)[:, None, None, None] + off[None, None, :, None] - 0.5 * height) / f
    u, v = (a.ravel() for a in np.broadcast_arrays(u, v))  # [H * W * ss * ss], pixel-major
    d = c2w[:3, :3] @ np.stack([u, -v, -np.ones_like(u)])
    d /= np.sqrt(_dot(d, d))
    o = c2w[:3, 3:4]
    b = _dot(o, d)  # cull rays that miss the object's bounding sphere
    live = np.flatnonzero((b * b - (_dot(o, o) - _BOUND_R**2) >= 0) & (b < 0))
    rgb, hit = np.zeros((3, u.size)), np.zeros(u.size, dtype=bool)
    rgb[:, live], hit[live] = _shade(np.broadcast_to(o, (3, live.size)), d[:, live])
    rgb = rgb.reshape(3, height, width, ss * ss).sum(-1).transpose(1, 2, 0)
    cnt = hit.reshape(height, width, ss * ss).sum(-1)
    rgba = np.concatenate([rgb / np.maximum(cnt, 1)[..., None], (cnt / ss**2)[..., None]], axis=-1)
    return np.round(rgba * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------- dataset
def _params(width: int, height: int, n_train: int, n_test: int, seed: int) -> dict:
    return {
        "generator": "splatpack.captures.synthetic",
        "version": GENERATOR_VERSION,
        "params": {"width": width, "height": height, "n_train": n_train, "n_test": n_test, "seed": seed},
    }


def _is_complete(out_dir: Path, stamp: dict) -> bool:
    """True if ``out_dir`` holds a finished scene whose stamp equals ``stamp``."""
    try:
        if json.loads((out_dir / STAMP_NAME).read_text()) != stamp:
            return False
        for split in ("train", "test"):
            frames = json.loads((out_dir / f"transforms_{split}.json").read_text())["frames"]
            if not all((out_dir / (fr["file_path"] + ".png")).is_file() for fr in frames):
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_split(root: Path, split: str, cams: np.ndarray, width: int, height: int) -> None:
    (root / split).mkdir()
    frames = []
    for k, eye in enumerate(cams):
        c2w = opengl_look_at(eye)
        Image.fromarray(render_view(c2w, width, height), "RGBA").save(root / split / f"r_{k}.png")
        frames.append({"file_path": f"{split}/r_{k}", "transform_matrix": c2w.round(12).tolist()})
    meta = {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}
    (root / f"transforms_{split}.json").write_text(json.dumps(meta, indent=2) + "\n")


def make_synthetic_scene(
    out_dir: Path, *, width: int = 128, height: int = 128, n_train: int = 48, n_test: int = 8, seed: int = 0
) -> Path:
    """Write the synthetic scene to ``out_dir`` in Blender format and return ``out_dir``.

    Reuses ``out_dir`` untouched if it already holds a complete scene with the same parameters
    and generator version. Otherwise the scene is written into a temporary sibling folder and
    renamed into place, so ``out_dir`` is never left half-written; a stale or partial earlier
    synthetic scene (or an empty folder) there is replaced, any other existing folder is an error.
    Same parameters → byte-identical files. ``seed`` rotates the camera layouts.
    """
    if min(width, height, n_train) < 1 or n_test < 0:
        raise SplatpackError(f"invalid synthetic scene size {width}x{height}, {n_train}+{n_test} views")
    out_dir = Path(out_dir).expanduser().absolute()
    stamp = _params(width, height, n_train, n_test, seed)
    if _is_complete(out_dir, stamp):
        return out_dir
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / STAMP_NAME).exists())):
        raise SplatpackError("exists and is not a splatpack synthetic scene; not overwriting", out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        train, test = _camera_positions(n_train, n_test, seed)
        _write_split(tmp, "train", train, width, height)
        _write_split(tmp, "test", test, width, height)
        (tmp / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n")  # last: marks complete
        if _is_complete(out_dir, stamp):  # another process finished first
            return out_dir
        if out_dir.exists():  # stale / partial synthetic scene or empty folder
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out_dir, old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if not _is_complete(out_dir, stamp):  # lost a race to an equal scene: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def default_scene_dir() -> Path:
    """Per-user cache folder of the default scene: ``$SPLATPACK_CACHE/default`` if the variable
    is set, else ``~/.cache/splatpack/default``."""
    root = os.environ.get("SPLATPACK_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "splatpack"
    return base / DEFAULT_SCENE_NAME


def ensure_default_scene() -> Path:
    """Return the default scene's folder, generating it (default parameters) if missing or stale."""
    return make_synthetic_scene(default_scene_dir())
