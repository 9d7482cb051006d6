"""Training configuration: schedule scaling, YAML errors, the presets and the compact block."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from splatpack.codecs.compact import CompactCodecConfig
from splatpack.core.errors import SplatpackError
from splatpack.train import TrainConfig, apply_overrides, load_config
from splatpack.train.config import CompactConfig

CONFIGS = Path(__file__).parents[2] / "configs"


def test_schedule_scaling():
    cfg = TrainConfig(steps=3000).scaled_schedule()
    assert cfg.densify.refine_stop == 1500 and cfg.densify.reset_every == 300 and cfg.sh_degree_interval == 100
    assert TrainConfig(steps=30000).scaled_schedule().densify.refine_stop == 15000


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stepz: 10\n")
    with pytest.raises(SplatpackError, match="unknown setting 'stepz'"):
        load_config(bad)
    bad.write_text("densify: 3\n")
    with pytest.raises(SplatpackError, match="must be a mapping"):
        load_config(bad)
    bad.write_text("steps: [1\n")
    with pytest.raises(SplatpackError, match="invalid YAML"):
        load_config(bad)
    cfg = load_config(CONFIGS / "default.yaml")
    assert dataclasses.asdict(cfg) == dataclasses.asdict(TrainConfig())  # the preset documents the defaults


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
