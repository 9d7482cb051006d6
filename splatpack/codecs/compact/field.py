"""The colour field of a compact scene as stored arrays (Compact-3DGS §3.2 and §3.4).

The hash-grid table is post-processed once: entries |v| < ``hash_prune`` (paper: 0.1) are set to
zero and the rest put on a symmetric ``hash_bits`` grid, so zero stays exactly zero (the most
frequent symbol). The table is stored one section per level (tiny-cuda-nn layout, [T_l, F]), the
MLP weights in float16; the header keeps the field's config, box, quantisation step and MLP shapes.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import Tensor

from splatpack.codecs.compact.config import CompactCodecConfig
from splatpack.compress.colour_field import ColourField, ColourFieldConfig
from splatpack.compress.hash_grid import HashGridConfig, grid_levels

__all__ = [
    "build_field",
    "dequantize_field",
    "field_arrays",
    "field_box_meta",
    "hash_features",
    "hash_level_slices",
    "implied_mlp_shapes",
    "quantize_field",
]


def field_arrays(field: ColourField) -> tuple[np.ndarray, list[np.ndarray]]:
    """(hash table params [P] float32, MLP weights and biases in order)."""
    state = field.state_for_export()
    params = state["hash_params"].detach().cpu().float().numpy().reshape(-1)
    layers = []
    for w, b in state["mlp"]:
        layers.append(w.detach().cpu().float().numpy())
        layers.append(b.detach().cpu().float().numpy())
    return params, layers


def field_box_meta(field: ColourField) -> list[list[float]]:
    """The field's box as the header stores it: ``[[x, y, z] min, [x, y, z] max]``."""
    return [field.aabb_min.cpu().tolist(), field.aabb_max.cpu().tolist()]


def quantize_field(field: ColourField, cfg: CompactCodecConfig) -> tuple[np.ndarray, list[np.ndarray], dict[str, Any]]:
    """(pruned and quantised hash table [P] int8/int16, MLP arrays in float16, the header's
    ``colour`` entry)."""
    params, layers = field_arrays(field)
    v = params.astype(np.float64)
    v[np.abs(v) < cfg.hash_prune] = 0.0
    qmax = (1 << (cfg.hash_bits - 1)) - 1
    step = float(np.float32(max(np.abs(v).max(), 1e-12) / qmax))
    hash_q = np.rint(v / step).clip(-qmax, qmax).astype(np.int8 if cfg.hash_bits <= 8 else np.int16)
    mlp = [a.astype(np.float16) for a in layers]
    colour_meta = {
        "kind": "hash-grid-field",
        "step": step,
        "bits": cfg.hash_bits,
        "mlp_shapes": [list(a.shape) for a in layers],
        "config": field.cfg.to_dict(),
        "aabb": field_box_meta(field),
    }
    return hash_q, mlp, colour_meta


def hash_features(colour_meta: dict[str, Any]) -> int:
    """Features per hash-table entry (F), from the header."""
    return int(colour_meta["config"]["grid"]["n_features_per_level"])


def hash_level_slices(colour_meta: dict[str, Any]) -> list[tuple[int, int]]:
    """[start, end) of each level in the flat table (tiny-cuda-nn layout), from the header."""
    grid = HashGridConfig(**colour_meta["config"]["grid"])
    f = grid.n_features_per_level
    return [(lv.offset * f, (lv.offset + lv.size) * f) for lv in grid_levels(grid)]


def implied_mlp_shapes(config: dict[str, Any]) -> list[tuple[int, ...]]:
    """The MLP arrays a colour-field config (the header's ``colour.config``) implies, in the order
    :func:`field_arrays` gives them: ``W [out, in]``, ``b [out]`` per layer, first layer first."""
    cfg = ColourFieldConfig.from_dict(config)
    dims = [cfg.n_input_dims] + [cfg.hidden] * cfg.hidden_layers + [3]
    shapes: list[tuple[int, ...]] = []
    for d_in, d_out in pairwise(dims):
        shapes += [(d_out, d_in), (d_out,)]
    return shapes


def build_field(colour_meta: dict[str, Any], hash_params: Tensor, mlp: list[Tensor]) -> ColourField:
    """Rebuild a :class:`~splatpack.compress.colour_field.ColourField` from decoded arrays."""
    cfg = ColourFieldConfig.from_dict(colour_meta["config"])
    lo, hi = colour_meta["aabb"]
    pairs = [(mlp[i], mlp[i + 1]) for i in range(0, len(mlp), 2)]
    return ColourField.from_arrays(cfg, lo, hi, hash_params, pairs).eval()


def dequantize_field(colour_meta: dict[str, Any], hash_q: np.ndarray, mlp: list[np.ndarray]) -> ColourField:
    """Inverse of :func:`quantize_field` (up to its rounding): the field the stored arrays define."""
    params = torch.from_numpy(hash_q.astype(np.float32) * np.float32(colour_meta["step"]))
    return build_field(colour_meta, params, [torch.from_numpy(a.astype(np.float32)) for a in mlp])
