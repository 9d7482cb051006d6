"""Grid scenes behind the scene-codec seam (``splatpack.codecs.grid.codec``): the registry finds
the codec by its kind, encode gives an :class:`EncodedScene` that writes the same bytes as
``write_grid_scene``, and ``read_scene`` decodes it; the package re-exports what other layers use."""

from __future__ import annotations

import pytest
import torch
from grid_scenes import FIELDS

import splatpack.codecs.grid as grid_package
from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid import (
    FORMAT_KIND,
    GRID_SCENE_CODEC,
    GridCodecConfig,
    GridSceneCodec,
    read_grid_scene,
    write_grid_scene,
)
from splatpack.codecs.registry import SCENE_CODECS, read_gaussians, read_scene, scene_codec
from splatpack.spk.container import SpkError


def test_registry_finds_the_grid_codec_by_kind(tmp_path):
    assert FORMAT_KIND == "sog-grid" == GRID_SCENE_CODEC.kind
    assert isinstance(GRID_SCENE_CODEC, GridSceneCodec)
    assert scene_codec(FORMAT_KIND) is GRID_SCENE_CODEC is SCENE_CODECS["sog-grid"]
    with pytest.raises(SpkError, match=r"unknown \.spk scene kind 'sog-grid-v2'"):
        scene_codec("sog-grid-v2", tmp_path / "x.spk")


def test_encode_writes_what_write_grid_scene_writes(scene, grid, tmp_path):
    cfg = GridCodecConfig.from_quality(6)
    encoded = GRID_SCENE_CODEC.encode(scene, cfg, grid)
    assert isinstance(encoded, EncodedScene) and encoded.num_gaussians == len(scene)
    assert encoded.meta["kind"] == FORMAT_KIND
    size = encoded.write(tmp_path / "a.spk")
    assert size == write_grid_scene(tmp_path / "b.spk", scene, cfg, grid_index=grid)
    assert (tmp_path / "a.spk").read_bytes() == (tmp_path / "b.spk").read_bytes()
    codec, decoded = read_scene(tmp_path / "a.spk")
    direct = read_grid_scene(tmp_path / "a.spk")
    assert codec is GRID_SCENE_CODEC and codec.gaussians(decoded) is decoded
    via_registry = read_gaussians(tmp_path / "a.spk")
    for f in FIELDS:
        assert torch.equal(getattr(decoded, f), getattr(direct, f))
        assert torch.equal(getattr(via_registry, f), getattr(direct, f))


def test_package_exports_resolve():
    for name in grid_package.__all__:
        assert getattr(grid_package, name) is not None, name
    for name in (
        "MAX_SPARE",
        "ATTRIBUTES",
        "GRID_CODECS",
        "QUALITY_LEVELS",
        "sort_features",
        "sort_scene",
        "quantisation_aware",
        "encode_grid_scene",
        "decode_grid_scene",
        "grid_attribute_bytes",
    ):
        assert name in grid_package.__all__, name
