"""Random initialisation in the cameras' common view (splatpack.train.init) and the notice of a
capture without SfM points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splatpack.captures.synthetic import opengl_look_at
from splatpack.train import TrainConfig
from splatpack.train.init import Cameras, common_view_points, frustum_votes, look_at_point, point_colours
from splatpack.train.views import initial_gaussians, load_views, no_points_notice

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def ring(n: int = 24, radius: float = 4.0, size: int = 64, fov: float = 0.7, centre=(0.5, -0.3, 0.2)) -> Cameras:
    """``n`` cameras on a horizontal ring around ``centre``, looking at it."""
    centre = np.asarray(centre)
    az = 2 * math.pi * np.arange(n) / n
    eyes = centre + radius * np.stack([np.cos(az), np.sin(az), np.full(n, 0.3)], 1)
    c2w = np.stack([opengl_look_at(e, centre) @ OPENGL_TO_OPENCV for e in eyes])
    f = 0.5 * size / math.tan(fov / 2)
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    return Cameras(c2w, np.repeat(K[None], n, 0), np.full((n, 2), float(size)), np.full(n, 0.1), np.full(n, 10.0))


def test_look_at_point_of_a_ring() -> None:
    assert np.allclose(look_at_point(ring().c2w), [0.5, -0.3, 0.2], atol=1e-9)


def test_ring_samples_lie_in_the_central_region_and_before_every_camera() -> None:
    cams = ring()
    pts = common_view_points(cams, 5000, min_fraction=0.8, seed=1)
    assert pts.shape == (5000, 3)
    d = np.linalg.norm(pts - [0.5, -0.3, 0.2], axis=1)
    # half the field of view at the rig radius: 4 tan(0.35) ≈ 1.46; all cameras see inside ~1.4
    assert d.max() < 2.0 and np.median(d) < 1.3, (d.max(), np.median(d))
    _u, _v, z = cams.project(pts)
    assert (z > 0).all(), "a sample lies behind a camera"
    seen, outside = frustum_votes(pts, cams)
    assert (seen >= math.ceil(0.8 * len(cams))).all() and (outside == 0).all()
    # the region is filled, not a point: spread over every axis
    assert (pts.std(0) > 0.25).all(), pts.std(0)
    # the old box (±1.3 × rig radius about the centres) is mostly empty space the cameras share less
    rng = np.random.default_rng(0)
    box = rng.uniform(-1.3 * 4.4, 1.3 * 4.4, (5000, 3)) + [0.5, -0.3, 0.2]
    assert (frustum_votes(box, cams)[0] >= 0.8 * len(cams)).mean() < 0.1


def test_masks_carve_to_the_visual_hull() -> None:
    """Masks that cover a disc of the image around the centre: the points end inside the cone
    intersection, i.e. closer to the centre than without masks."""
    cams = ring(size=32)
    yy, xx = np.mgrid[0:32, 0:32] + 0.5
    disc = (((xx - 16) ** 2 + (yy - 16) ** 2) < 6**2).astype(np.float32)
    free = common_view_points(cams, 2000, seed=2)
    carved = common_view_points(cams, 2000, masks=[disc] * len(cams), seed=2)
    r = lambda p: np.linalg.norm(p - [0.5, -0.3, 0.2], axis=1)
    # a disc of radius 6 px at focal 48 px, 4 away: a ball of radius ≈ 0.5
    assert r(carved).max() < 0.75 < r(free).max(), (r(carved).max(), r(free).max())
    with pytest.raises(ValueError, match="no point"):
        common_view_points(cams, 10, masks=[np.zeros((32, 32), np.float32)] * len(cams))


def test_point_colours_average_the_pixels_seen() -> None:
    cams = ring(n=4, size=16)
    images = [np.full((16, 16, 3), k / 4, dtype=np.float32) for k in range(4)]
    centre = np.array([[0.5, -0.3, 0.2]])
    assert np.allclose(point_colours(centre, cams, images), (0 + 1 + 2 + 3) / 16)
    far_away = np.array([[100.0, 100.0, 100.0]])  # no camera sees it: grey
    assert np.allclose(point_colours(far_away, cams, images), 0.5)


def test_initial_gaussians_of_an_object_capture(tiny_capture) -> None:
    """The synthetic object (inside ±1.2) without points: frustum init carved by the alpha lies on
    the object; the box init fills ±1.3; the notice says what happened and how to get points."""
    import torch

    cfg = TrainConfig(init_random_points=3000, sh_degree=0)
    views = load_views(tiny_capture.train, torch.ones(3), "cpu")
    said: list[str] = []
    gs = initial_gaussians(tiny_capture, cfg, views, notice=said.append)
    assert len(gs) == 3000 and said == [no_points_notice(tiny_capture)]
    assert "no SfM points" in said[0] and "splatpack process IMAGES --poses FILE --out DIR" in said[0]
    means = gs.means.numpy()
    assert np.abs(means).max() < 1.3
    box = initial_gaussians(tiny_capture, TrainConfig(init_random_points=3000, sh_degree=0, init_mode="box"))
    # carved to the object's hull: much nearer the origin than the box's points
    assert np.linalg.norm(means, axis=1).mean() < 0.7 * np.linalg.norm(box.means.numpy(), axis=1).mean()


def test_no_common_view_falls_back_to_the_box(tiny_capture) -> None:
    """Empty masks leave no point to keep: the box init is used, and the notice says so."""
    import torch

    views = load_views(tiny_capture.train, torch.ones(3), "cpu")
    for v in views:
        v.alpha = torch.zeros_like(v.alpha)
    said: list[str] = []
    cfg = TrainConfig(init_random_points=500, sh_degree=0)
    gs = initial_gaussians(tiny_capture, cfg, views, notice=said.append)
    assert len(said) == 2 and "no point is seen" in said[1] and "inside their masks" in said[1] and "box" in said[1]
    box = initial_gaussians(tiny_capture, TrainConfig(init_random_points=500, sh_degree=0, init_mode="box"))
    assert torch.equal(gs.means, box.means)


@pytest.mark.parametrize("setting", [{"init_mode": "sphere"}, {"init_view_fraction": 0.0}, {"init_view_fraction": 1.5}])
def test_bad_init_settings_are_one_line_errors(tiny_capture, setting) -> None:
    from splatpack.core.errors import SplatpackError

    with pytest.raises(SplatpackError, match=next(iter(setting))):
        initial_gaussians(tiny_capture, TrainConfig(init_random_points=100, **setting))
