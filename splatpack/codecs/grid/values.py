"""Step 1 of the grid codec: every attribute in its coded domain t = f_a(x) (SOG, Morgenstern et
al., ECCV 2024, §3): positions t = sign(x)·log1p(|x|) (SOG's log activation), or the positions
themselves (``means_transform="linear"``, :func:`resolved_positions`); colour DC and SH
rest as stored (``sh0`` [N, 3], ``shN`` [N, K−1, 3] → [N, 3(K−1)]); log-scales; unit
quaternions with w ≥ 0 (q and −q are one rotation); opacities as logits (SOG quantises the
opacity *parameter*) or, with ``opacity_space="alpha"``, as α = σ(o).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from splatpack.codecs.grid.config import GridCodecConfig
from splatpack.compress.quantise import lattice_bits, signed_log1p, smallest_three, unit_quats_w_positive
from splatpack.core.errors import SplatpackError

__all__ = ["coded_positions", "coded_values", "float64_numpy", "quantised_channels", "resolved_positions"]


def float64_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor as a float64 numpy array on the CPU (detached)."""
    return t.detach().cpu().double().numpy()


def resolved_positions(gs, cfg: GridCodecConfig) -> GridCodecConfig:
    """``cfg`` with ``means_transform="auto"`` decided for ``gs``: ``linear``, with the bits of
    the lattice, where every position channel lies on a uniform lattice (a quantised file's
    fixed point: SPZ stores 2⁻¹² steps) that at most ``means.bits`` + 1 bits code exactly
    (:func:`~splatpack.compress.quantise.lattice_bits`); else ``signed-log1p`` (measured in the
    README, "Seventh round"). Any other setting is returned as it is."""
    if cfg.means_transform != "auto":
        return cfg
    need = lattice_bits(float64_numpy(gs.means)) if cfg.means.distance == 0 and len(gs) else None
    if need is None or need > min(16, cfg.means.bits + 1):
        return dataclasses.replace(cfg, means_transform="signed-log1p")
    means = dataclasses.replace(cfg.means, bits=max(need, 1))
    return dataclasses.replace(cfg, means_transform="linear", means=means)


def coded_positions(means: np.ndarray, cfg: GridCodecConfig) -> np.ndarray:
    """Positions [N, 3] (float64) in their coded domain: as they are with ``means_transform``
    ``linear``, else sign(x)·log1p(|x|) (``auto`` unresolved counts as the log)."""
    return means if cfg.means_transform == "linear" else signed_log1p(means)


def quantised_channels(name: str, t: np.ndarray, cfg: GridCodecConfig) -> np.ndarray:
    """The channels of attribute ``name``'s coded values t [N, C] that its quantiser sees: a
    rotation's smallest three components with ``quats_encoding`` "smallest-three", else t."""
    if name == "quats" and cfg.quats_encoding == "smallest-three":
        return smallest_three(t)[0]
    return t


def coded_values(gs, cfg: GridCodecConfig) -> dict[str, np.ndarray]:
    """Every attribute of ``gs`` in its coded domain, [N, C] float64; non-finite values are refused."""
    n = len(gs)
    out = {
        "means": coded_positions(float64_numpy(gs.means), cfg),
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
