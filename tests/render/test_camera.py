"""Cameras (:mod:`splatpack.render.camera`) and the GaussianSet → rasterizer adapter
(:mod:`splatpack.render.gaussians`)."""

from __future__ import annotations

import math

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.render import rasterize, render_gaussians, render_image
from splatpack.render.camera import camera_path, focus_point, frame_gaussians, look_at


def test_look_at_is_a_right_handed_opencv_pose_facing_the_target() -> None:
    eye, target, up = np.array([1.0, -2.0, 3.0]), np.array([0.2, 0.1, -0.3]), np.array([0.0, 0.0, 1.0])
    m = look_at(eye, target, up)
    R = m[:3, :3]
    assert np.allclose(R.T @ R, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)
    fwd = (target - eye) / np.linalg.norm(target - eye)
    assert np.allclose(m[:3, 2], fwd) and np.allclose(m[:3, 3], eye)
    assert m[:3, 1] @ up < 0  # y (down on screen) points away from world up


def test_frame_gaussians_sees_the_central_80_percent() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(5000, 3)) + np.array([3.0, -1.0, 2.0])
    centre, dist = frame_gaussians(pts, 60.0)
    r80 = np.percentile(np.linalg.norm(pts - np.median(pts, 0), axis=1), 80)
    assert np.allclose(centre, np.median(pts, 0))
    assert math.isclose(dist, r80 / math.sin(math.radians(30.0)) * 1.05)


def test_camera_path_orbits_cameras_that_surround_the_scene() -> None:
    ring = [
        look_at(np.array([4 * math.cos(t), 4 * math.sin(t), 1.0]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
        for t in np.linspace(0, 2 * math.pi, 12, endpoint=False)
    ]
    c2ws = np.stack(ring)
    assert np.allclose(focus_point(c2ws), 0.0, atol=1e-9)
    path = camera_path(c2ws, 30)
    dists = np.linalg.norm(path[:, :3, 3], axis=1)
    assert path.shape == (30, 4, 4) and np.allclose(dists, dists[0])  # one circle around the focus


def test_render_gaussians_is_rasterize_of_the_set() -> None:
    gs = GaussianSet.random_in_box(300, np.full(3, -0.5), np.full(3, 0.5), 1, 0)
    c2w = look_at(np.array([0.0, 0.0, -3.0]), np.zeros(3), np.array([0.0, -1.0, 0.0]))
    vm = torch.from_numpy(np.linalg.inv(c2w)).float()
    K = torch.tensor([[40.0, 0, 24], [0, 40.0, 24], [0, 0, 1]])
    ours = render_gaussians(gs, vm, K, 48, 48, backend="cpu")[0]
    ref = rasterize(gs.means, gs.quats, gs.linear_scales, gs.alphas, gs.sh, vm, K, 48, 48, sh_degree=1, backend="cpu")[
        0
    ]
    assert torch.equal(ours, ref)
    img = render_image(gs, c2w, K.numpy().astype(np.float64), 48, 48, (0.0, 0.0, 0.0), "cpu")
    assert torch.equal(img, ref.clamp(0, 1))
