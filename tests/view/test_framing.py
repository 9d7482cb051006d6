"""The viewers' start view (:mod:`splatpack.view.framing`) on synthetic inputs: robust statistics
of the Gaussians (floaters move nothing, the box fits the view, up is up for each convention) and
the training cameras (look-at point, up, a typical camera's direction, distance and field of view)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from splatpack.render.camera import look_at
from splatpack.view.framing import (
    BLENDER_UP,
    MARGIN,
    RDF_UP,
    capture_up,
    fit_distance,
    frame_cameras,
    frame_points,
    weighted_quantiles,
)

SIZE = 200  # pixels of the square test camera


def project(framing, points) -> np.ndarray:
    """Pixel coordinates (u right, v down) [K, 2] and depth [K] of world points in the framing's
    start camera, ``SIZE`` square at its field of view."""
    w2c = np.linalg.inv(framing.c2w())
    p = np.asarray(points, np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    f = 0.5 * SIZE / math.tan(math.radians(framing.fov_degrees) / 2)
    return f * p[:, :2] / p[:, 2:] + SIZE / 2, p[:, 2]


def blob(rng, n: int, centre, sigma) -> np.ndarray:
    return rng.normal(size=(n, 3)) * np.asarray(sigma) + np.asarray(centre)


def test_weighted_quantiles():
    v = np.array([3.0, 1.0, 2.0, 10.0, 4.0])
    assert weighted_quantiles(v, np.ones(5), 0.5) == 3.0  # the median
    # weight on one value pulls every central quantile onto it
    np.testing.assert_allclose(weighted_quantiles(v, np.array([0.0, 0.0, 0.0, 1.0, 0.0]), [0.1, 0.5, 0.9]), 10.0)
    lo, hi = weighted_quantiles(np.arange(1001.0), np.ones(1001), [0.05, 0.95])
    assert lo == pytest.approx(50.0, abs=1) and hi == pytest.approx(950.0, abs=1)


def test_outliers_and_faint_floaters_do_not_move_the_framing():
    rng = np.random.default_rng(0)
    centre = np.array([5.0, -2.0, 3.0])
    obj = blob(rng, 5000, centre, [0.3, 0.6, 0.3])
    clean = frame_points(obj, np.full(len(obj), 0.9))
    far = blob(rng, 100, [400.0, -900.0, 50.0], 30.0)  # 2 % far outliers, opaque
    faint = blob(rng, 6000, [-60.0, 10.0, 80.0], 20.0)  # 54 % floaters, nearly transparent
    means = np.concatenate([obj, far, faint])
    alphas = np.concatenate([np.full(len(obj), 0.9), np.full(len(far), 0.9), np.full(len(faint), 0.005)])
    framing = frame_points(means, alphas)
    assert np.linalg.norm(framing.centre - centre) < 0.05
    assert framing.distance == pytest.approx(clean.distance, rel=0.1)
    assert framing.radius == pytest.approx(clean.radius, rel=0.1)
    # unweighted, the floaters would drag the centre away: the opacity weighting is what holds it
    assert np.linalg.norm(frame_points(means).centre - centre) > 1.0


def test_the_camera_looks_at_the_centre_and_the_bulk_fits():
    rng = np.random.default_rng(1)
    means = blob(rng, 4000, [1.0, 2.0, -3.0], [0.2, 1.0, 0.4])  # tall: the fit is vertical
    framing = frame_points(means)
    c2w = framing.c2w()
    np.testing.assert_allclose(c2w[:3, 2], (framing.centre - framing.eye) / framing.distance, atol=1e-12)
    uv, depth = project(framing, framing.centre[None])
    np.testing.assert_allclose(uv[0], [SIZE / 2, SIZE / 2], atol=1e-9)
    uv, depth = project(framing, means)
    inside = (depth > 0) & (uv >= 0).all(1) & (uv <= SIZE).all(1)
    assert inside.mean() > 0.9
    lo, hi = np.percentile(uv[:, 1], [5, 95])
    assert hi - lo > 0.5 * SIZE  # fills the view rather than sitting small in it


@pytest.mark.parametrize("up", [RDF_UP, BLENDER_UP])
def test_up_is_up_on_screen(up):
    rng = np.random.default_rng(2)
    base = blob(rng, 2000, [0.0, 0.0, 0.0], 0.3)
    top = blob(rng, 500, 1.0 * np.asarray(up), 0.1)  # a blob above the base in that convention
    framing = frame_points(np.concatenate([base, top]), up=up)
    np.testing.assert_allclose(framing.up, up)
    (u_base, v_base), (u_top, v_top) = project(framing, [base.mean(0), top.mean(0)])[0]
    assert v_top < v_base - 20  # higher on screen (v points down)
    assert abs(u_top - u_base) < 1.0  # straight above: the camera is not rolled
    # the camera looks from slightly above the scene (15°), never from below
    assert (framing.eye - framing.centre) @ np.asarray(up) > 0


def test_capture_conventions():
    assert capture_up("blender") == BLENDER_UP
    for fmt in ("colmap", "llff", "nerfstudio", None):
        assert capture_up(fmt) == RDF_UP


def test_fit_distance_is_tight():
    """A point on the edge of a view's margin needs exactly that distance."""
    fov = 60.0
    t = math.tan(math.radians(fov) / 2) / MARGIN
    forward, up = np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])
    d = fit_distance(np.array([[0.0, -1.0, 0.0]]), forward, up, fov, 1.0)  # one unit above the centre
    assert d == pytest.approx(1.0 / t)
    wide = fit_distance(np.array([[2.0, 0.0, 0.0]]), forward, up, fov, 2.0)  # sideways, twice as wide a view
    assert wide == pytest.approx(1.0 / t)


def test_empty_and_degenerate_inputs():
    framing = frame_points(np.zeros((0, 3)))
    assert np.isfinite(framing.eye).all() and framing.distance > 0
    one = frame_points(np.array([[1.0, 2.0, 3.0]]), np.array([0.0]))  # zero opacity: weights fall back to 1
    np.testing.assert_allclose(one.centre, [1.0, 2.0, 3.0])
    assert np.isfinite(one.eye).all() and one.distance > 0
    nans = frame_points(np.array([[np.nan, 0.0, 0.0], [1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(nans.centre, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="opacities"):
        frame_points(np.zeros((3, 3)), np.ones(2))
    with pytest.raises(ValueError, match="no cameras"):
        frame_cameras(np.zeros((0, 4, 4)), np.zeros((0, 3, 3)), np.zeros(0))


def hemisphere_rig(target, up, n: int = 40, seed: int = 3):
    """Cameras above ``target`` at random elevations 10–70° and distances 3–5, azimuths a golden
    angle apart (evenly around, as a capture circles an object), looking at it (OpenCV)."""
    rng = np.random.default_rng(seed)
    up = np.asarray(up, np.float64)
    e1 = np.cross(up, [1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.cross(up, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    el = np.radians(rng.uniform(10, 70, n))
    az = np.arange(n) * math.pi * (3 - math.sqrt(5))
    dist = rng.uniform(3, 5, n)
    dirs = np.cos(el)[:, None] * (np.cos(az)[:, None] * e1 + np.sin(az)[:, None] * e2) + np.sin(el)[:, None] * up
    return np.stack([look_at(target + d * r, target, up) for d, r in zip(dirs, dist)]), el, dist


def test_frame_from_training_cameras():
    target, up = np.array([0.5, -1.0, 2.0]), np.array([0.0, 0.0, 1.0])
    c2ws, el, dist = hemisphere_rig(target, up)
    K = np.array([[100.0, 0, 64], [0, 120.0, 48], [0, 0, 1]])
    framing = frame_cameras(c2ws, np.repeat(K[None], len(c2ws), 0), np.full(len(c2ws), 96.0))
    assert framing.source == "cameras"
    np.testing.assert_allclose(framing.centre, target, atol=1e-9)
    assert framing.up @ up > 0.995  # the mean camera up
    assert framing.distance == pytest.approx(np.median(dist))
    d = (framing.eye - framing.centre) / framing.distance
    elevation = math.asin(d @ up)
    assert abs(elevation - np.median(el)) < math.radians(6)  # a typical camera: not the highest, not the lowest
    assert framing.fov_degrees == pytest.approx(math.degrees(2 * math.atan(48 / 120)))
    # the start view looks at the target, world up at the top of the screen
    c2w = framing.c2w()
    np.testing.assert_allclose(c2w[:3, 2], -d, atol=1e-12)
    assert c2w[:3, 1] @ up < 0
    json.dumps(framing.with_background((1.0, 1.0, 1.0)).to_json())  # what config.json carries


def test_parallel_cameras_look_at_the_gaussians_depth():
    """A forward-facing rig whose axes are parallel has no crossing point: the look-at point is
    on the mean optical axis at the depth of the Gaussians' (trimmed mean) centre."""
    eyes = np.array([[x, y, 0.0] for x in (-1.0, 0.0, 1.0) for y in (-0.5, 0.5)])
    c2ws = np.stack([np.block([[np.eye(3), e[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]]) for e in eyes])
    K = np.array([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]])
    means = blob(np.random.default_rng(4), 3000, [0.3, 0.2, 10.0], 1.0)
    framing = frame_cameras(c2ws, np.repeat(K[None], 6, 0), np.full(6, 64.0), means, np.full(3000, 0.5))
    np.testing.assert_allclose(framing.centre, [0.0, 0.0, 10.0], atol=0.1)
    np.testing.assert_allclose(framing.up, RDF_UP, atol=1e-12)  # OpenCV cameras upright: y down
    assert framing.eye[2] == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize("name", ["plant.splat", "biker.spz"])
def test_real_splats_start_whole_and_centred(shared_dir, name):
    """The captures of the report (plant cropped at the top, biker off-centre), rendered by the
    CPU reference renderer from their framing at a 4:3 view: the object's pixels are centred, fill
    a fair share of the image and leave the top and bottom rows free."""
    from splatpack.formats import load_scene
    from splatpack.render.gaussians import render_image

    path = shared_dir / "splats" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    gs = load_scene(path)
    framing = frame_points(gs.means.numpy(), gs.alphas.numpy())
    w, h = 96, 72
    f = 0.5 * h / math.tan(math.radians(framing.fov_degrees) / 2)
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    image = render_image(gs, framing.c2w(), K, w, h, (0.0, 0.0, 0.0), "cpu").numpy()
    rows, cols = np.nonzero(image.max(axis=2) > 0.1)
    assert 0.05 < len(rows) / (w * h) < 0.6
    assert abs(rows.mean() / h - 0.5) < 0.08 and abs(cols.mean() / w - 0.5) < 0.08
    assert rows.min() > 0 and rows.max() < h - 1  # not cropped at the top or the bottom
