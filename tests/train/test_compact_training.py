"""Compact-3DGS training with ``configs/compact.yaml`` and its ``.spk`` file: post-processing,
determinism of the decoded file, resume, the info/decompress/export commands (SH baking) and the
object/scene presets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from splatpack.captures import load_capture
from splatpack.captures.synthetic import make_synthetic_scene
from splatpack.codecs.compact import CompactCodecConfig, dequantize, read_compact, render_compact
from splatpack.formats.ply import load_ply
from splatpack.train import TrainConfig, Trainer, apply_overrides, load_config
from splatpack.train.config import CompactConfig

CONFIGS = Path(__file__).parents[2] / "configs"


# ---- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_capture(tmp_path_factory):
    root = make_synthetic_scene(tmp_path_factory.mktemp("syn") / "scene", width=48, height=48, n_train=10, n_test=3)
    return load_capture(root)


def compact_config(**kw) -> TrainConfig:
    cfg = load_config(CONFIGS / "compact.yaml")
    base = {
        "steps": 80, "init_random_points": 1500, "checkpoint_every": 40, "eval_lpips": False, "log_every": 10,
        "scale_schedule": False,
        "densify": {"refine_start": 10, "refine_every": 10, "reset_every": 1000, "refine_stop": 50},
        "compact": {"rvq": {"steps": 20, "vq": {"num_stages": 3, "codebook_size": 16}},
                    "masking": {"prune_every": 10},
                    "object": {"masking": {"lambda_mask": 0.01, "lr": 0.1},
                               "colour": {"lr": 1e-2, "milestones": [], "model": {"grid": {"log2_hashmap_size": 12}}}}},
    }  # fmt: skip
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
    from splatpack.metrics import psnr

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
    code, _ = trainer.compact_code()
    mem = dequantize(code)
    v = trainer.test_views[0]
    img_mem = render_compact(mem, v.viewmat, v.K, v.frame.width, v.frame.height, trainer.background, "cpu")[0]
    img_file = render_compact(sa, v.viewmat, v.K, v.frame.width, v.frame.height, trainer.background, "cpu")[0]
    assert torch.equal(img_mem, img_file)


def test_evaluation_leaves_the_codebooks_alone(compact_run):
    trainer, _, _ = compact_run
    before = [trainer.vq_scale.codebooks().clone(), trainer.vq_rot.codebooks().clone()]
    trainer.evaluate(write_renders=False)
    assert torch.equal(before[0], trainer.vq_scale.codebooks()) and torch.equal(before[1], trainer.vq_rot.codebooks())
    assert trainer.vq_scale.training  # back in training mode


def test_info_and_decompress(compact_run, tmp_path):
    from splatpack.apps.cli import main
    from splatpack.apps.inspect import decompress, spk_info

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
    from splatpack.apps.cli import main
    from splatpack.formats import load_scene

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


def test_compact_resume_is_exact(tiny_capture, tmp_path):
    cfg = compact_config(steps=40, compact={"rvq": {"steps": 15}}, densify={"refine_stop": 20})
    straight = Trainer(tiny_capture, cfg, tmp_path / "a")
    straight.train()
    paused = Trainer(tiny_capture, cfg, tmp_path / "b")
    assert paused.train(stop_at=30) is None  # inside the VQ phase
    resumed = Trainer(tiny_capture, cfg, tmp_path / "b")
    resumed.train(resume=True)
    assert (tmp_path / "a" / "scene.spk").read_bytes() == (tmp_path / "b" / "scene.spk").read_bytes()


def test_object_preset_is_picked_for_object_captures():
    cfg = load_config(CONFIGS / "compact.yaml").compact
    obj, scene = cfg.resolved(True), cfg.resolved(False)
    assert obj.masking.lambda_mask == 4e-3 and scene.masking.lambda_mask == 5e-4
    assert obj.colour.lr == 1e-3 and scene.colour.lr == 1e-2
    assert CompactConfig().enabled is False


def test_scene_overrides_merge_into_the_object_block():
    cfg = load_config(CONFIGS / "compact.yaml")
    cfg = apply_overrides(cfg, {"compact": {"object": {"masking": {"lr": 4e-3}}}})
    obj = cfg.compact.resolved(True)
    assert obj.masking.lr == 4e-3 and obj.masking.lambda_mask == 4e-3  # merged, not replaced
    assert obj.colour.model.grid.log2_hashmap_size == 16


def test_the_codec_block_loads_as_compact_codec_settings():
    codec = load_config(CONFIGS / "compact.yaml").compact.codec
    assert isinstance(codec, CompactCodecConfig) and codec.hash_prune == 0.02 and codec.min_opacity == 0.02
    assert CompactConfig().codec == CompactCodecConfig()
