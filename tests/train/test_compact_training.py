"""Compact-3DGS training with ``configs/compact.yaml`` and its ``.spk`` file: post-processing,
determinism of the decoded file, resume, the info/decompress/export commands (SH baking)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from splatpack.apps.cli import main
from splatpack.apps.inspect import decompress, spk_info
from splatpack.codecs.compact import dequantize, read_compact, render_compact
from splatpack.formats import load_scene
from splatpack.formats.ply import load_ply
from splatpack.metrics import psnr
from splatpack.train import TrainConfig, Trainer, apply_overrides, load_config
from splatpack.train.outputs import compact_code

CONFIGS = Path(__file__).parents[2] / "configs"


def compact_config(**kw) -> TrainConfig:
    cfg = load_config(CONFIGS / "compact.yaml")
    base = {
        "steps": 80,
        "init_random_points": 1500,
        "init_mode": "box",  # random points in a box: many fall outside the object, so the masks prune
        "checkpoint_every": 40,
        "eval_lpips": False,
        "log_every": 10,
        "scale_schedule": False,
        "densify": {"refine_start": 10, "refine_every": 10, "reset_every": 1000, "refine_stop": 50},
        "compact": {
            "rvq": {"steps": 20, "vq": {"num_stages": 3, "codebook_size": 16}},
            "masking": {"prune_every": 10},
            "object": {
                "masking": {"lambda_mask": 0.01, "lr": 0.1},
                "colour": {"lr": 1e-2, "milestones": [], "model": {"grid": {"log2_hashmap_size": 12}}},
            },
        },
    }
    cfg = apply_overrides(cfg, base)
    return apply_overrides(cfg, kw)


@pytest.fixture(scope="module")
def compact_run(tiny_capture, tmp_path_factory):
    out = tmp_path_factory.mktemp("compact")
    trainer = Trainer(tiny_capture, compact_config(), out)
    metrics = trainer.train()
    return trainer, metrics, out


def test_compact_training_writes_a_small_spk(compact_run):
    trainer, metrics, out = compact_run
    spk = out / "scene.spk"
    assert spk.is_file() and metrics["size_bytes"] == spk.stat().st_size
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["size_bytes"] == metrics["size_bytes"]
    assert metrics["mask_pruned"] > 50  # the mask removed Gaussians
    st = metrics["storage_bytes"]
    per_gaussian = sum(st[k] for k in ("position", "opacity", "scale", "rotation")) / metrics["num_gaussians"]
    assert per_gaussian < 248 / 10, st  # 248 B per Gaussian in a PLY
    assert set(metrics["storage_bytes"]) >= {"position", "opacity", "scale", "rotation", "colour", "other", "total"}
    assert len(metrics["codebook_usage"]["scale"]) == 3
    assert "sh0" not in trainer.params  # the colour field replaced SH
    bg = sum(psnr(torch.ones_like(v.image), v.image) for v in trainer.test_views) / len(trainer.test_views)
    assert metrics["psnr"] > bg + 2.0, (metrics["psnr"], bg)
    # the decoded file is what was evaluated: within a small margin of the pre-post-processing model
    assert metrics["psnr"] > metrics["psnr_before_postprocess"] - 1.0


def test_decoding_is_deterministic_and_matches_the_model_in_memory(compact_run):
    trainer, _, out = compact_run
    a = read_compact(out / "scene.spk")
    b = read_compact(out / "scene.spk")
    for f in ("morton", "opacity_q", "scale_idx", "rot_idx", "scale_books", "rot_books", "hash_q"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    sa, sb = dequantize(a), dequantize(b)
    for f in ("means", "quats", "scales", "opacities"):
        assert torch.equal(getattr(sa, f), getattr(sb, f)), f
    # the post-processed model built in memory (no file) renders exactly like the decoded file
    code, _ = compact_code(trainer)
    mem = dequantize(code)
    v = trainer.test_views[0]
    img_mem = render_compact(mem, v.viewmat, v.K, v.frame.width, v.frame.height, trainer.background, "cpu")[0]
    img_file = render_compact(sa, v.viewmat, v.K, v.frame.width, v.frame.height, trainer.background, "cpu")[0]
    assert torch.equal(img_mem, img_file)


def test_evaluation_leaves_the_codebooks_alone(compact_run):
    trainer, _, _ = compact_run
    c = trainer.compact
    before = [c.vq_scale.codebooks().clone(), c.vq_rot.codebooks().clone()]
    trainer.evaluate(write_renders=False)
    assert torch.equal(before[0], c.vq_scale.codebooks()) and torch.equal(before[1], c.vq_rot.codebooks())
    assert c.vq_scale.training  # back in training mode


def test_info_and_decompress(compact_run, tmp_path):
    _, metrics, out = compact_run
    d = spk_info(out / "scene.spk")
    assert d["num_gaussians"] == metrics["num_gaussians"] and d["total_bytes"] == metrics["size_bytes"]
    assert sum(s["bytes"] for s in d["sections"]) <= d["total_bytes"]
    assert {s["name"] for s in d["sections"]} >= {
        "positions",
        "opacities",
        "scales.indices",
        "colour.hash.00",
        "colour.mlp",
    }
    r = decompress(out / "scene.spk", tmp_path / "baked.ply")
    gs = load_ply(tmp_path / "baked.ply")
    assert len(gs) == metrics["num_gaussians"] and gs.sh_degree == 3
    assert r["baked_vs_field_psnr"] > 30.0, r  # SH-3 reproduces the field's colours closely
    assert main(["info", str(out / "scene.spk"), "--json"]) == 0
    assert main(["decompress", str(out / "scene.spk"), "-o", str(tmp_path / "b2.ply")]) == 0


@pytest.mark.parametrize("fmt", ["ply", "splat", "spz", "sog"])
def test_export_compact_scene_to_each_format(compact_run, tmp_path, fmt):
    _, metrics, out = compact_run
    ref = load_scene(out / "scene.spk")
    dst = tmp_path / f"scene.{fmt}"
    assert main(["export", str(out / "scene.spk"), "-o", str(dst)]) == 0
    back = load_scene(dst)
    assert len(back) == len(ref) == metrics["num_gaussians"]
    # same Gaussians within the format's quantisation (SOG reorders them: nearest neighbours)
    tol = 2e-3 * float(ref.means.abs().max()) + 1e-4
    d = torch.cdist(ref.means.double(), back.means.double())
    assert float(d.min(1).values.max()) < tol and float(d.min(0).values.max()) < tol, fmt
    # (.splat and SOG store 8-bit colour: compare in [0, 1])
    rgb_ref, rgb = (0.5 + 0.2820948 * ref.sh0[:, 0]).clamp(0, 1), (0.5 + 0.2820948 * back.sh0[:, 0]).clamp(0, 1)
    assert abs(float(rgb.mean()) - float(rgb_ref.mean())) < 0.02


def test_compact_resume_is_exact(straight_and_resumed, tmp_path):
    cfg = compact_config(steps=40, compact={"rvq": {"steps": 15}}, densify={"refine_stop": 20})
    straight_and_resumed(cfg, stop_at=30)  # paused inside the VQ phase
    assert (tmp_path / "a" / "scene.spk").read_bytes() == (tmp_path / "b" / "scene.spk").read_bytes()
