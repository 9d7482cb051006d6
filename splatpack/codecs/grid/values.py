"""Step 1 of the grid codec: every attribute in its coded domain t = f_a(x) (SOG, Morgenstern et
al., ECCV 2024, §3): positions t = sign(x)·log1p(|x|) (SOG's log activation); colour DC and SH
rest as stored (``sh0`` [N, 3], ``shN`` [N, K−1, 3] → [N, 3(K−1)]); log-scales; unit
quaternions with w ≥ 0 (q and −q are one rotation); opacities as logits (SOG quantises the
opacity *parameter*) or, with ``opacity_space="alpha"``, as α = σ(o).
"""

from __future__ import annotations

import numpy as np
import torch

from splatpack.codecs.grid.config import GridCodecConfig
from splatpack.compress.quantise import signed_log1p, unit_quats_w_positive
from splatpack.core.errors import SplatpackError

__all__ = ["coded_values", "float64_numpy"]


def float64_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor as a float64 numpy array on the CPU (detached)."""
    return t.detach().cpu().double().numpy()


def coded_values(gs, cfg: GridCodecConfig) -> dict[str, np.ndarray]:
    """Every attribute of ``gs`` in its coded domain, [N, C] float64; non-finite values are refused."""
    n = len(gs)
    out = {
        "means": signed_log1p(float64_numpy(gs.means)),
        "sh0": float64_numpy(gs.sh0).reshape(n, -1),
        "scales": float64_numpy(gs.scales),
        "quats": unit_quats_w_positive(float64_numpy(gs.quats)),
    }
    logit = float64_numpy(gs.opacities).reshape(n, 1)
    out["opacities"] = logit if cfg.opacity_space == "logit" else 1.0 / (1.0 + np.exp(-logit))
    if gs.shN.shape[1]:
        out["shN"] = float64_numpy(gs.shN).reshape(n, -1)  # [N, (K-1)*3], coefficient-major, RGB inner
    for name, v in out.items():
        if not np.isfinite(v).all():
            raise SplatpackError(f"cannot encode a grid scene: '{name}' has non-finite values")
    return out
