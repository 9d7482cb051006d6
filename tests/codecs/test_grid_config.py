"""Grid-scene settings and the quality ladder (``splatpack.codecs.grid.config``)."""

from __future__ import annotations

import json

import pytest

from splatpack.codecs.grid import QUALITY_LEVELS, AttributeCoding, GridCodecConfig, encode_grid_scene
from splatpack.core.errors import SplatpackError


def test_quality_levels(scene, grid):
    assert GridCodecConfig.from_quality("sog") == GridCodecConfig()
    assert GridCodecConfig.from_quality("default") == GridCodecConfig.from_quality(6) != GridCodecConfig()
    assert GridCodecConfig.from_quality("small").sh_mode == "palette"
    default = GridCodecConfig.from_quality("default")
    assert default.sh_mode == "basis" and default.basis_rank == 40 and default.shN.bits == 6
    assert GridCodecConfig.from_quality(8).sh_mode == "grid" and GridCodecConfig.from_quality("sog").sh_mode == "grid"
    assert GridCodecConfig.from_quality(6, opacity_space="alpha").opacity_space == "alpha"
    # attribute overrides as mappings (YAML presets) replace only the fields they name
    c = GridCodecConfig.from_quality(3, means={"bits": 11}, opacities={"codec": "png"})
    assert c.means == AttributeCoding(11, "jxl") and c.opacities == AttributeCoding(7, "png")
    with pytest.raises(SplatpackError, match="'means' takes bits, codec, distance and low_bits"):
        GridCodecConfig.from_quality(3, means={"bitz": 11})
    for q in QUALITY_LEVELS:
        GridCodecConfig.from_quality(q)
    sizes = []
    for q in (0, 6, 10):
        cfg = GridCodecConfig.from_quality(q, palette_size=32, palette_iterations=3)
        sections, meta = encode_grid_scene(scene, cfg, grid_index=grid)
        sizes.append(sum(len(s.payload) for s in sections))
        assert json.loads(json.dumps(meta)) == meta
    assert sizes[0] < sizes[1] < sizes[2], sizes
    for bad in (11, -1, "best", 5.0):
        with pytest.raises(SplatpackError, match="quality"):
            GridCodecConfig.from_quality(bad)


@pytest.mark.parametrize(
    "cfg, pattern",
    [
        (GridCodecConfig(means=AttributeCoding(17)), "means.bits"),
        (GridCodecConfig(sh0=AttributeCoding(8, "gif")), "sh0.codec"),
        (GridCodecConfig(scales=AttributeCoding(6, "png", 1.0)), "scales.distance"),
        (GridCodecConfig(opacity_space="sigmoid"), "opacity_space"),
        (GridCodecConfig(sh_mode="vq"), "sh_mode"),
        (GridCodecConfig(sort_weights={"colour": 1.0}), "sort_weights"),
        (GridCodecConfig(palette_size=0), "palette_size"),
        (GridCodecConfig(sh_mode="rvq", rvq_stages=9), "rvq_stages"),
        # lossy JPEG XL would blur the index of the largest component into another axis
        (GridCodecConfig(quats=AttributeCoding(8, "jxl", 1.0), quats_encoding="smallest-three"), "losslessly"),
    ],
)
def test_invalid_configs(scene, grid, cfg, pattern):
    with pytest.raises(SplatpackError, match=pattern):
        encode_grid_scene(scene, cfg, grid_index=grid)
