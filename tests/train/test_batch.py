"""Batches of cameras (``batch_size``): one step over B cameras against B single-camera steps at the
same parameters — the gradient is their mean and the densification statistics their sum."""

from __future__ import annotations

import pytest
import torch

from splatpack.core.errors import SplatpackError
from splatpack.train import TrainConfig, Trainer, apply_overrides
from splatpack.train.trainer import merge_camera_infos

ZERO_LR = {k: 0.0 for k in ("means", "means_final", "quats", "scales", "opacities", "sh0", "shN")}


def frozen_config(**kw) -> TrainConfig:
    """Learning rates 0 (Adam leaves the parameters alone) and no refinement in the first steps,
    so that consecutive single-camera steps see the parameters one batched step sees."""
    base = TrainConfig(steps=100, init_random_points=1500, eval_lpips=False, scale_schedule=False)
    return apply_overrides(base, {"lr": ZERO_LR, "densify": {"refine_start": 50}, **kw})


def recording_gradients(trainer: Trainer) -> list[dict[str, torch.Tensor]]:
    """The parameters' gradients at every optimiser step of ``trainer``, recorded."""
    seen: list[dict[str, torch.Tensor]] = []

    def record(_optimizer, _args, _kwargs):
        seen.append({k: p.grad.detach().clone() for k, p in trainer.params.items() if p.grad is not None})

    trainer.optimizers["means"].register_step_pre_hook(record)  # the first optimiser stepped
    return seen


def test_a_batch_averages_the_gradients_and_sums_the_statistics_of_its_cameras(tiny_capture, tmp_path):
    batched = Trainer(tiny_capture, frozen_config(batch_size=3), tmp_path / "b")
    batched.setup()
    single = Trainer(tiny_capture, frozen_config(batch_size=1), tmp_path / "s")
    single.setup()
    g_batched, g_single = recording_gradients(batched), recording_gradients(single)

    batched.train_step()
    for _ in range(3):  # the same three cameras, one per step, at the same parameters
        single.train_step()

    for k in ("means", "quats", "scales", "opacities", "sh0"):
        mean_single = sum(g[k] for g in g_single) / 3
        scale = float(mean_single.abs().max())  # float sums in another order: relative to the largest
        torch.testing.assert_close(
            g_batched[0][k], mean_single, rtol=1e-4, atol=1e-5 * scale + 1e-12
        )  # quats: ~0 (spheres)
    sb, ss = batched.strategy_state, single.strategy_state
    assert torch.equal(sb["count"], ss["count"]) and sb["count"].sum() > 0
    torch.testing.assert_close(sb["grad2d"], ss["grad2d"], rtol=1e-4, atol=1e-5 * float(ss["grad2d"].max()))


def test_a_batch_draws_the_cameras_single_steps_would(tiny_capture, tmp_path):
    batched = Trainer(tiny_capture, frozen_config(batch_size=4, random_background=True), tmp_path / "b")
    single = Trainer(tiny_capture, frozen_config(random_background=True), tmp_path / "s")
    batched.setup()
    single.setup()
    views = batched.next_batch()
    ones = [single.next_batch()[0] for _ in range(4)]
    assert [v.frame.name for v, _ in views] == [v.frame.name for v, _ in ones]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(views, ones))


def test_merged_infos_stack_the_cameras_for_the_densifier():
    infos = []
    for i in range(2):
        m = torch.zeros(1, 5, 2, requires_grad=True)
        (m * (i + 1)).sum().backward()
        infos.append({"means2d": m, "radii": torch.full((1, 5, 2), i), "width": 8, "height": 8, "n_cameras": 1})
    info = merge_camera_infos(infos)
    assert info["n_cameras"] == 2 and info["means2d"].shape == (2, 5, 2) and info["radii"].shape == (2, 5, 2)
    assert torch.equal(info["means2d"].grad[1], torch.full((5, 2), 2.0)) and info["width"] == 8
    assert merge_camera_infos(infos[:1]) is infos[0]


def test_batch_size_below_one_is_refused(tiny_capture, tmp_path):
    with pytest.raises(SplatpackError, match="batch_size"):
        Trainer(tiny_capture, frozen_config(batch_size=0), tmp_path)
