"""Objects as PLAS-sorted attribute grids (:mod:`splatpack.generative.grids`): exact round trip
of the cells, rotations that turn positions, frames and view-dependent colour together, a frame
that floaters do not move, smooth sorted grids, augmentation, channel statistics and the fixed
held-out split."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from format_scenes import random_set

from splatpack.core.frames import canonical_gaussians, quat_multiply
from splatpack.core.sh import sh_rotation, sh_to_color
from splatpack.generative.grids import (
    ChannelStats,
    GridLayout,
    augmented_grid,
    gaussians_to_grid,
    grid_channels,
    grid_to_gaussians,
    held_out_split,
    object_frame,
    rotate_about_axis,
)

OBJECTS = Path(__file__).resolve().parents[3] / "shared" / "splats" / "objects10k"


def _rotation(axis, angle) -> torch.Tensor:
    a = torch.tensor(axis, dtype=torch.float64)
    k = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


@pytest.mark.parametrize("degree", [0, 2])
def test_grid_round_trip_holds_every_gaussian_once(degree):
    layout = GridLayout(height=8, width=12, sh_degree=degree)
    gs = random_set(96, degree=degree, seed=1)
    grid, index = gaussians_to_grid(gs, layout, seed=3)
    assert grid.shape == (layout.channels, 8, 12) and len(grid_channels(layout)) == layout.channels
    assert sorted(index.reshape(-1).tolist()) == list(range(96))
    back = grid_to_gaussians(grid, layout)
    ref = canonical_gaussians(gs)
    rows = torch.from_numpy(index.reshape(-1))
    for name in ("means", "scales", "quats", "opacities", "sh0", "shN"):
        torch.testing.assert_close(getattr(back, name), getattr(ref, name)[rows].float(), atol=1e-5, rtol=0)


def test_grid_needs_exactly_its_size():
    with pytest.raises(ValueError, match="holds 64"):
        gaussians_to_grid(random_set(50), GridLayout(height=8, width=8))


def test_sh_rotation_turns_colour_with_the_object():
    rot = _rotation((0.0, -1.0, 0.0), 0.9)
    m = sh_rotation(3, rot)
    coeffs = torch.randn(16, 3, dtype=torch.float64)
    dirs = torch.nn.functional.normalize(torch.randn(40, 3, dtype=torch.float64), dim=1)
    turned = sh_to_color(3, (m @ coeffs).expand(40, 16, 3), dirs @ rot.T)  # seen from R·d
    torch.testing.assert_close(turned, sh_to_color(3, coeffs.expand(40, 16, 3), dirs))


def test_rotate_about_axis_turns_positions_frames_and_colour():
    gs = random_set(30, degree=3, seed=2)
    gs.quats = torch.nn.functional.normalize(gs.quats, dim=1)
    angle, axis = 1.1, (0.0, -1.0, 0.0)
    rot = _rotation(axis, angle).float()
    out = rotate_about_axis(gs, axis, angle)
    torch.testing.assert_close(out.means, gs.means @ rot.T, atol=1e-5, rtol=0)
    # covariance axes: R(q') = R_axis R(q)
    q_axis = torch.tensor([math.cos(angle / 2), 0.0, -math.sin(angle / 2), 0.0])
    torch.testing.assert_close(out.quats, quat_multiply(q_axis.expand(30, 4), gs.quats), atol=1e-5, rtol=0)
    dirs = torch.nn.functional.normalize(torch.randn(30, 3), dim=1)
    torch.testing.assert_close(sh_to_color(3, out.sh, dirs @ rot.T), sh_to_color(3, gs.sh, dirs), atol=1e-4, rtol=0)
    full_turn = rotate_about_axis(gs, axis, 2 * math.pi)
    torch.testing.assert_close(full_turn.means, gs.means, atol=1e-5, rtol=0)


def test_object_frame_ignores_floaters():
    gs = random_set(2000, seed=4)
    gs.means = gs.means.clamp(-1, 1) * 0.5 + torch.tensor([3.0, 0.0, 0.0])
    clean = object_frame(gs)
    gs.means[:5] = torch.tensor([1000.0, -500.0, 200.0])
    noisy = object_frame(gs)
    assert abs(noisy.centre[0] - 3.0) < 0.05 and abs(noisy.radius - clean.radius) < 0.05


def test_sorted_grid_is_smoother_than_the_input_order():
    gs = random_set(1024, seed=5)  # a surface: positions on a sphere, colour following height
    gs.means = torch.nn.functional.normalize(gs.means, dim=1)
    gs.sh0 = gs.means[:, None, 1:2].expand(1024, 1, 3).clone()
    gs.scales = torch.full((1024, 3), -4.0)
    grid, _ = gaussians_to_grid(gs, GridLayout(height=32, width=32), seed=0)
    positions = grid[:3]
    neighbours = (positions[:, :, 1:] - positions[:, :, :-1]).abs().mean()
    shuffled = positions.reshape(3, -1)[:, torch.randperm(1024, generator=torch.Generator().manual_seed(0))]
    assert neighbours < 0.4 * shuffled.diff().abs().mean()


def test_augmentation_varies_and_keeps_the_object_in_its_frame():
    gs = random_set(500, seed=6, pos_scale=4.0)
    gs.means += torch.tensor([10.0, 2.0, -3.0])
    layout = GridLayout(height=16, width=16)
    a, b = augmented_grid(gs, layout, seed=1), augmented_grid(gs, layout, seed=2)
    assert a.shape == b.shape == (14, 16, 16) and not torch.equal(a, b)
    assert a[:3].abs().max() < 2.5  # centred and scaled (percentile box half-side 1, rotated)


def test_channel_stats_standardise_and_restore():
    grids = torch.randn(5, 14, 8, 8) * torch.arange(1, 15).float()[None, :, None, None] + 3
    stats = ChannelStats.fit(grids)
    z = torch.stack([stats.standardise(g) for g in grids])
    assert z.mean().abs() < 1e-5 and (z.transpose(0, 1).reshape(14, -1).std(1) - 1).abs().max() < 1e-4
    torch.testing.assert_close(stats.restore(stats.standardise(grids[0])), grids[0])


def test_held_out_split_is_fixed():
    names = [f"object{i}" for i in range(33)]
    train, test = held_out_split(names)
    assert len(test) == 6 and not set(train) & set(test) and len(train) == 27
    assert held_out_split(list(reversed(names))) == (train, test)
    with pytest.raises(ValueError):
        held_out_split(names[:6])


@pytest.mark.skipif(not OBJECTS.is_dir(), reason="../shared/splats/objects10k is absent")
def test_real_object_becomes_a_smooth_grid():
    from splatpack.formats import load_scene

    gs = load_scene(OBJECTS / "stanford_bunny.splat")
    grid = augmented_grid(gs, GridLayout(height=32, width=32), seed=0)
    assert torch.isfinite(grid).all()
    assert (grid[:3, :, 1:] - grid[:3, :, :-1]).abs().mean() < 0.25
