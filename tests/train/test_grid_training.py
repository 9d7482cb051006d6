"""Self-Organizing Gaussians training: the smoothness loss, sorting inside the trainer, pruning
with a grid, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from splatpack.apps.cli import main
from splatpack.apps.render import render_run
from splatpack.codecs.grid import read_grid_scene
from splatpack.compress.grid_smoothness import blur_grid, grid_smoothness_loss
from splatpack.compress.grid_sort import neighbour_distance
from splatpack.core.errors import SplatpackError
from splatpack.formats import load_scene, save_scene
from splatpack.spk.container import SpkReader
from splatpack.train import TrainConfig, Trainer, apply_overrides, load_config

TINY_CAPTURE = (40, 8, 2)  # size, training and test views


def grid_config(**kw) -> TrainConfig:
    base = TrainConfig(steps=60, init_random_points=900, checkpoint_every=20, eval_lpips=False, log_every=10)
    over = {
        "scale_schedule": False,
        "densify": {"refine_start": 10, "refine_stop": 30, "refine_every": 10, "reset_every": 1000},
        "grid": {"enabled": True, "start": 30, "resort_every": 0},
    }
    return apply_overrides(apply_overrides(base, over), kw)


def test_blur_of_a_constant_with_holes():
    grid = torch.full((6, 7, 2), 3.0)
    mask = torch.rand(6, 7, generator=torch.Generator().manual_seed(0)) > 0.3
    grid[~mask] = 1e6  # empty cells' contents must not leak into the blur
    out = blur_grid(grid, mask)
    assert torch.allclose(out, torch.full_like(out, 3.0))


def test_smoothness_loss_prefers_smooth_grids_and_ignores_empty_cells():
    g = torch.Generator().manual_seed(1)
    H, W = 12, 12
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    smooth = torch.stack([yy, xx], -1).reshape(-1, 2).float()
    index = torch.arange(H * W).reshape(H, W)
    shuffled = index.flatten()[torch.randperm(H * W, generator=g)].reshape(H, W)
    w = {"x": 1.0}
    a = grid_smoothness_loss({"x": smooth}, index, w)
    b = grid_smoothness_loss({"x": smooth}, shuffled, w)
    assert float(a) < 0.2 * float(b)
    # an attribute row that sits in no cell gets no gradient
    holey = index.clone()
    holey[3, 4] = -1
    base = grid_smoothness_loss({"x": smooth}, holey, w)
    x = smooth.clone().requires_grad_(True)
    grid_smoothness_loss({"x": x}, holey, w).backward()
    assert float(x.grad[int(index[3, 4])].abs().sum()) == 0.0
    assert float(x.grad.abs().sum()) > 0 and float(base) > 0


def _grid_is_a_permutation(trainer: Trainer) -> None:
    gi = trainer.grid.index
    assert gi is not None
    ids = gi[gi >= 0]
    n = len(trainer.params["means"])
    assert len(ids) == n and torch.equal(ids.sort().values, torch.arange(n))


def test_training_keeps_a_sorted_grid_and_the_loss_smooths_it(tiny_capture, tmp_path):
    runs = {}
    for lam in (0.0, 2.0):
        t = Trainer(tiny_capture, grid_config(grid={"smoothness_weight": lam}), tmp_path / f"l{lam}")
        m = t.train()
        # the grid scene is written in the training grid's arrangement and evaluated decoded
        assert (tmp_path / f"l{lam}" / "scene.spk").stat().st_size == m["size_bytes"] > 0
        assert m["num_gaussians"] == len(t.params["means"]) and m["grid_sorts"] == (1 if lam else 0)
        assert abs(m["psnr"] - m["psnr_before_postprocess"]) < 1.0, m
        if not lam:  # nothing to smooth: training never sorted (the codec sorted the final Gaussians)
            assert t.grid.index is None
            t.grid.sort(t.params, t.step)  # the arrangement to compare with
        _grid_is_a_permutation(t)
        attrs = t.grid.attributes(t.params)
        x = torch.cat([attrs[k].reshape(len(t.params["means"]), -1) for k in ("means", "sh0", "scales")], 1)
        x = (x - x.mean(0)) / x.std(0)
        runs[lam] = neighbour_distance(x.detach().numpy(), t.grid.index.numpy())
    assert runs[2.0] < 0.9 * runs[0.0], runs


def test_resorting_and_mask_pruning_keep_the_grid_consistent(tiny_capture, tmp_path):
    cfg = grid_config(
        grid={"resort_every": 10},
        compact={
            "enabled": True,
            "colour_field": False,
            "masking": {"lr": 0.3, "lambda_mask": 0.05, "prune_every": 10},
            "rvq": {"steps": 10},
        },
    )
    t = Trainer(tiny_capture, cfg, tmp_path)
    t.setup()
    while t.step < 55:
        t.train_step()
        t.step += 1
        if t.grid.index is not None and t.step > 30:
            gi = t.grid.index
            ids = gi[gi >= 0]
            assert len(ids.unique()) == len(ids) and int(ids.max()) < len(t.params["means"])
    assert t.compact.pruned > 0
    assert t.grid.sorts >= 2


def test_grid_training_resumes_exactly(straight_and_resumed):
    straight, resumed = straight_and_resumed(grid_config(), stop_at=40)
    assert torch.equal(straight.grid.index, resumed.grid.index)
    for k in straight.params:
        assert torch.equal(straight.params[k], resumed.params[k]), k
    assert np.isfinite(resumed.grid.smoothness_loss(resumed.params).item())


def test_compress_with_finetune(tiny_capture, tmp_path):
    """`splatpack compress IN --finetune SCENE`: a short SOG fine-tune of trained splats, then the grid scene."""
    base = Trainer(tiny_capture, grid_config(grid={"enabled": False}), tmp_path / "base")
    base.train()
    ply = tmp_path / "base" / "point_cloud.ply"
    out = tmp_path / "ft.spk"
    args = ["compress", str(ply), "-o", str(out), "--finetune", str(tiny_capture.root), "--finetune-steps", "15"]
    assert main(args) == 0
    gs = read_grid_scene(out)
    assert len(gs) == len(base.params["means"]) and gs.sh_degree == 3
    assert not list(tmp_path.glob(".finetune-*"))  # the working folder is gone
    # degree-0 splats (a .splat file) fine-tune at degree 0

    splat = save_scene(load_scene(ply), tmp_path / "base.splat")
    out0 = tmp_path / "ft0.spk"
    assert (
        main(["compress", str(splat), "-o", str(out0), "--finetune", str(tiny_capture.root), "--finetune-steps", "10"])
        == 0
    )
    gs0 = read_grid_scene(out0)
    assert len(gs0) == len(base.params["means"]) and gs0.sh_degree == 0
    assert main(["compress", str(ply), "-o", str(tmp_path / "x.spk"), "--finetune", str(tmp_path / "nope")]) == 2


def test_training_from_trained_splats_uses_every_sh_band_from_step_0(tiny_capture, tmp_path):
    """Splats given by ``init_from`` were trained with all their bands: a fine-tune that restarted
    3DGS's band schedule would fit the DC colour to view-dependent effects for the first steps."""
    base = Trainer(tiny_capture, grid_config(grid={"enabled": False}), tmp_path / "base")
    base.train()
    cfg = grid_config(init_from=str(tmp_path / "base" / "point_cloud.ply"), sh_degree_interval=1000)
    t = Trainer(tiny_capture, cfg, tmp_path / "ft")
    t.setup()
    assert t.step == 0 and t.current_sh_degree() == 3
    fresh = Trainer(tiny_capture, grid_config(sh_degree_interval=1000), tmp_path / "fresh")
    assert fresh.current_sh_degree() == 0
    # splats handed over in memory (``compress --refine``), with no file to name
    given = Trainer(
        tiny_capture,
        grid_config(sh_degree_interval=1000),
        tmp_path / "given",
        initial=load_scene(tmp_path / "base" / "point_cloud.ply"),
    )
    given.setup()
    assert given.step == 0 and given.current_sh_degree() == 3


def full_config(**kw) -> TrainConfig:
    """configs/full.yaml at a toy scale: masking + SH-rest R-VQ + sorted grids."""

    cfg = load_config(Path(__file__).parents[2] / "configs" / "full.yaml", grid_config())
    over = {
        "grid": {"start": 30, "resort_every": 0},
        "compact": {"rvq": {"steps": 15, "sh_vq": {"codebook_size": 16}}, "masking": {"prune_every": 20}},
        "sh_degree_interval": 5,
    }
    return apply_overrides(apply_overrides(cfg, over), kw)


def test_full_preset_trains_masks_vq_and_grid_into_one_grid_scene(tiny_capture, tmp_path):
    cfg = full_config(grid={"quantisation_aware": True})
    assert cfg.compact.enabled and cfg.grid.enabled and not cfg.compact.colour_field
    t = Trainer(tiny_capture, cfg, tmp_path / "full")
    m = t.train()
    path = tmp_path / "full" / "scene.spk"
    assert path.stat().st_size == m["size_bytes"] > 0
    with SpkReader(path) as r:
        shn = r.meta["attributes"]["shN"]
        assert r.meta["kind"] == "sog-grid" and shn["mode"] == "rvq" and shn["stages"] == 2
    usage = m["codebook_usage"]["sh_rest"]
    assert len(usage) == 2 and all(0 < u <= 1 for u in usage)
    # the file holds the trained codebooks: each decoded SH rest is the training's VQ output of
    # some Gaussian, up to the codebooks' 8-bit quantisation (λ = 0: the codec sorted afresh)
    assert r.meta["sort"].get("sorted") is True
    decoded = read_grid_scene(path)
    assert len(decoded) == m["num_gaussians"] == len(t.params["means"])
    vq_out = t.compact.vq_shn.quantize(t.params["shN"].detach().reshape(len(decoded), -1))[0]
    err = torch.cdist(decoded.shN.reshape(len(decoded), -1), vq_out).min(1).values
    span = float(vq_out.abs().max()) + 1e-6
    close = float((err < 0.02 * span).float().mean())  # a near tie may pick another code here and there
    assert close > 0.9, (close, span)
    # quantisation-aware: the last steps rendered what the file decodes to (the R-VQ labels are
    # re-chosen against the 8-bit codebooks, nothing else differs)
    assert cfg.grid.quantisation_aware and abs(m["psnr"] - m["psnr_before_postprocess"]) < 0.2, m
    # α < min_opacity was cut and masked Gaussians are gone
    assert float(torch.sigmoid(t.params["opacities"].detach()).min()) >= cfg.compact.codec.min_opacity
    assert "mask" in t.params and not bool((torch.sigmoid(t.params["mask"]) <= cfg.compact.masking.threshold).any())
    # `splatpack render` takes the run folder: it has scene.spk, not point_cloud.ply

    renders = render_run(tmp_path / "full", backend="cpu")
    assert renders and all(p.suffix == ".png" and p.stat().st_size > 0 for p in renders)


def test_full_preset_with_smoothness_keeps_the_training_grid(tiny_capture, tmp_path):
    t = Trainer(tiny_capture, full_config(grid={"smoothness_weight": 1.0}), tmp_path / "smooth")
    m = t.train()
    path = tmp_path / "smooth" / "scene.spk"
    with SpkReader(path) as r:
        assert r.meta["sort"]["grid_index"] == "given"
    decoded = read_grid_scene(path)  # Gaussian for Gaussian in the training grid's raster order
    gi = t.grid.index
    order = gi[gi >= 0].cpu()
    assert len(order) == len(decoded) == m["num_gaussians"]
    sh0 = t.params["sh0"].detach()[order]
    half_step = float((sh0.amax((0, 1)) - sh0.amin((0, 1))).max()) / (2**6 - 1) / 2  # 6-bit colour DC
    assert torch.allclose(decoded.sh0, sh0, atol=1.01 * half_step + 1e-6)


def test_full_preset_resumes_exactly(tiny_capture, tmp_path):
    cfg = full_config(steps=40, grid={"start": 20}, compact={"rvq": {"steps": 15}})
    a = Trainer(tiny_capture, cfg, tmp_path / "a")
    a.train(stop_at=30)  # inside the VQ phase
    b = Trainer(tiny_capture, cfg, tmp_path / "a")
    mb = b.train(resume=True)
    c = Trainer(tiny_capture, cfg, tmp_path / "c")
    mc = c.train()
    assert mb["size_bytes"] == mc["size_bytes"] and mb["psnr"] == mc["psnr"]
    assert torch.equal(b.compact.vq_shn.codebooks(), c.compact.vq_shn.codebooks())


def test_rvq_attributes_are_checked(tiny_capture, tmp_path):
    with pytest.raises(SplatpackError, match=r"rvq\.attributes"):
        Trainer(tiny_capture, full_config(compact={"rvq": {"attributes": ["colour"]}}), tmp_path / "x")
    with pytest.raises(SplatpackError, match=r"rvq\.attributes"):  # the compact .spk stores scale/rotation indices
        Trainer(tiny_capture, full_config(grid={"enabled": False}), tmp_path / "y")


def test_grid_codec_settings_are_checked_before_training(tiny_capture, tmp_path):
    """A typo in ``grid.codec`` stops the run at setup, before the first step, not after training."""
    with pytest.raises(SplatpackError, match="unknown setting 'mean'"):
        Trainer(tiny_capture, grid_config(grid={"codec": {"mean": {"bits": 11}}}), tmp_path).setup()
    with pytest.raises(SplatpackError, match="quality"):
        Trainer(tiny_capture, grid_config(grid={"quality": 12}), tmp_path).setup()
