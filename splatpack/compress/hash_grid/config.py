"""Hash-grid configuration and tiny-cuda-nn's level layout (Müller et al., SIGGRAPH 2022, eq. 2–3).

Level ``l`` has the scale ``s_l = exp2f(l · log2f(b)) · N_min − 1`` (float32, as the CUDA code
computes it), ``R_l = ⌈s_l⌉ + 1`` vertices per axis and ``T_l = min(next_multiple(R_l³, 8),
2^log2_hashmap_size)`` table entries; it is *dense* (linear indexing) when ``R_l³ ≤ T_l`` and
hashed otherwise. Level ``l`` owns entries ``[offset_l, offset_l + T_l)`` of the flat table,
each entry ``F`` contiguous floats.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
from torch import Tensor

__all__ = [
    "INIT_RANGE",
    "PRIME_X",
    "PRIME_Y",
    "PRIME_Z",
    "U32",
    "HashGridBackend",
    "HashGridConfig",
    "LevelInfo",
    "grid_levels",
    "level_table",
]

HashGridBackend = Literal["auto", "numba", "torch", "tcnn"]

# tiny-cuda-nn's coherent-prime hash factors for the first three dimensions.
PRIME_X = 1
PRIME_Y = 2654435761
PRIME_Z = 805459861
U32 = 0xFFFFFFFF  # indices are computed modulo 2³², like the CUDA code's uint32 arithmetic
INIT_RANGE = 1e-4  # tcnn initialises the table with U(−1e-4, 1e-4)


@dataclass
class HashGridConfig:
    """The ``{"otype": "HashGrid", ...}`` configuration of tiny-cuda-nn (3-D input).

    Defaults are those of Compact-3DGS' colour field (``recolor``)."""

    n_levels: int = 16
    n_features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    per_level_scale: float = 1.447

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level

    def tcnn_config(self) -> dict[str, Any]:
        """The tinycudann encoding config with the same semantics."""
        return {
            "otype": "HashGrid",
            "n_levels": int(self.n_levels),
            "n_features_per_level": int(self.n_features_per_level),
            "log2_hashmap_size": int(self.log2_hashmap_size),
            "base_resolution": int(self.base_resolution),
            "per_level_scale": float(self.per_level_scale),
            "interpolation": "Linear",
            "hash": "CoherentPrime",
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LevelInfo(NamedTuple):
    """One level of the grid. ``offset``/``size`` count table *entries* (each ``F`` floats)."""

    offset: int
    size: int
    resolution: int
    scale: float  # s_l as the float32 value the kernels use
    dense: bool  # R³ ≤ T: linear (x-fastest) indexing; else coherent-prime hash


def _level_scale(level: int, base_resolution: int, per_level_scale: float) -> np.float32:
    """``exp2f(level · log2f(b)) · N_min − 1`` evaluated in float32 like tiny-cuda-nn."""
    log2_b = np.float32(math.log2(float(np.float32(per_level_scale))))
    t = np.float32(level) * log2_b
    growth = np.float32(2.0 ** float(t))
    return np.float32(growth * np.float32(base_resolution)) - np.float32(1.0)


def grid_levels(cfg: HashGridConfig) -> list[LevelInfo]:
    """Per-level offset, table size, resolution, scale and dense/hashed flag (tcnn's layout).

    Warns when a level's scale lies within a few ulp of an integer: CUDA's ``exp2f`` may be off
    by an ulp or two, so the GPU could give that level a different resolution."""
    if cfg.n_features_per_level not in (1, 2, 4, 8):
        raise ValueError("n_features_per_level must be 1, 2, 4 or 8 (as in tiny-cuda-nn)")
    if not 1 <= cfg.n_levels <= 32:
        raise ValueError("n_levels must be in [1, 32]")
    cap = 1 << int(cfg.log2_hashmap_size)
    max_params = U32 // 2
    levels, offset = [], 0
    for level in range(cfg.n_levels):
        scale = _level_scale(level, cfg.base_resolution, cfg.per_level_scale)
        res = int(math.ceil(float(scale))) + 1
        dense_size = res**3 if float(res) ** 3 <= max_params else max_params
        dense_size = -(-dense_size // 8) * 8
        size = min(dense_size, cap)
        dense = res**3 <= size  # otherwise size == 2^log2_hashmap_size (the kernels mask with size − 1)
        levels.append(LevelInfo(offset, size, res, float(scale), dense))
        offset += size
        near = abs(float(scale) - round(float(scale)))
        if 0.0 < near <= 4.0 * float(np.spacing(scale)):
            warnings.warn(
                f"hash-grid level {level}: scale {float(scale)!r} is within a few ulp of an integer; "
                "a GPU's exp2f may round it to a different resolution than this CPU code",
                stacklevel=2,
            )
    return levels


def level_table(params: Tensor, lv: LevelInfo, n_feat: int) -> Tensor:
    """View ``[T_l, F]`` of level ``lv``'s entries inside the flat table ``params``."""
    return params[lv.offset * n_feat : (lv.offset + lv.size) * n_feat].view(lv.size, n_feat)
