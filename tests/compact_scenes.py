"""Compact scenes from synthetic streams (no training), for the compact codec's tests."""

from __future__ import annotations

import torch

from splatpack.codecs.compact import CompactCodecConfig, pack_views, quantize_compact
from splatpack.compress.colour_field import ColourField, ColourFieldConfig
from splatpack.compress.hash_grid import HashGridConfig

GRID = {"n_levels": 3, "log2_hashmap_size": 8}


def synthetic_field(g: torch.Generator, field_cfg: dict | None = None) -> ColourField:
    """A colour field (``field_cfg`` over a small hash grid) with random table entries drawn from ``g``."""
    cfg = dict(field_cfg or {})
    cfg["grid"] = HashGridConfig(**{**GRID, **cfg.get("grid", {})})
    field = ColourField(ColourFieldConfig(**cfg))
    with torch.no_grad():
        field.hash_params.copy_(torch.randn(field.hash_params.shape, generator=g) * 0.3)
    return field


def make_code(n: int = 120, seed: int = 0, field_cfg: dict | None = None, codec=None, sh_bases=0, views=True):
    """A small compact scene from synthetic streams: a colour field (``field_cfg``) or SH (``sh_bases``)."""
    g = torch.Generator().manual_seed(seed)
    field = sh = None
    if not sh_bases:
        field = synthetic_field(g, field_cfg)
    else:
        sh = torch.randn(n, sh_bases, 3, generator=g)
    vm = torch.eye(4)
    vm[2, 3] = 3.0
    K = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])
    return quantize_compact(
        torch.randn(n, 3, generator=g),
        torch.rand(n, generator=g),
        torch.randint(0, 16, (n, 3), generator=g),
        torch.randint(0, 16, (n, 3), generator=g),
        torch.randn(3, 16, 3, generator=g) * 0.3,
        torch.randn(3, 16, 4, generator=g) * 0.3,
        codec or CompactCodecConfig(),
        field=field,
        sh=sh,
        meta={"scale_space": "log", "scene": "synthetic", "background": [0.0, 0.0, 0.0], "steps": 7},
        views=pack_views([(vm, K, 32, 32)]) if views else None,
    )
