"""Pure-torch hash encodings: a float64 reference (tests) and a vectorised version (any device).

Müller et al., "Instant Neural Graphics Primitives", SIGGRAPH 2022, §3: per level, the position
``p = fl32(x · s_l + ½)``, cell ``⌊p⌋`` and local coordinate ``t = p − ⌊p⌋``; the 8 corners
``v = ⌊p⌋ + c`` index the table by linear indexing (dense levels) or the coherent-prime hash
(eq. 4), and ``y_l = Σ_c w_c θ_l[h(v)]`` with ``w_c = Π_d (c_d ? t_d : 1 − t_d)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor

from splatpack.compress.hash_grid.config import PRIME_X, PRIME_Y, PRIME_Z, U32, HashGridConfig, grid_levels, level_table

__all__ = ["hash_encode_reference", "hash_encode_torch"]


def hash_encode_reference(params: Tensor, x: Tensor, cfg: HashGridConfig) -> Tensor:
    """Slow, explicit float64 evaluation of the encoding (python loops over levels and corners).

    ``params`` may require grad (the result is differentiable w.r.t. it). The only float32
    step is the one that defines tcnn's cell: ``p = fl32(x · s_l + ½)``; weights and sums are
    float64. Indices use numpy uint32 arithmetic, i.e. the modulo-2³² semantics of the CUDA code.
    """
    feat = cfg.n_features_per_level
    x64 = x.detach().to("cpu", torch.float64).numpy()
    p64 = params.to(torch.float64)
    outs = []
    for lv in grid_levels(cfg):
        table = level_table(p64, lv, feat)
        pos = (x64 * lv.scale + 0.5).astype(np.float32).astype(np.float64)  # fma, then fl32
        cell = np.floor(pos)
        frac = pos - cell
        cell_u32 = cell.astype(np.int64).astype(np.uint32)  # two's complement wrap, as (uint32)(int)
        y = torch.zeros(x64.shape[0], feat, dtype=torch.float64)
        for cz, cy, cx in itertools.product((0, 1), repeat=3):  # corner index cx + 2cy + 4cz ascending
            corner = np.array([cx, cy, cz], dtype=np.uint32)
            v = cell_u32 + corner  # uint32 wrap
            w = np.ones(x64.shape[0])
            for d in range(3):
                w = w * (frac[:, d] if corner[d] else 1.0 - frac[:, d])
            if lv.dense:
                r = np.uint32(lv.resolution)
                idx = v[:, 0] + v[:, 1] * r + v[:, 2] * (r * r)
            else:
                idx = (v[:, 0] * np.uint32(PRIME_X)) ^ (v[:, 1] * np.uint32(PRIME_Y)) ^ (v[:, 2] * np.uint32(PRIME_Z))
            idx = (idx % np.uint32(lv.size)).astype(np.int64)
            y = y + torch.from_numpy(w)[:, None] * table[torch.from_numpy(idx)]
        outs.append(y)
    return torch.cat(outs, dim=-1)


def hash_encode_torch(params: Tensor, x: Tensor, cfg: HashGridConfig) -> Tensor:
    """Vectorised torch encoding, differentiable w.r.t. ``params`` (not ``x``). [N,3] → [N,L·F].

    Materialises ``[N, 8, F]`` gathers per level and an autograd scatter-add; each float32 step
    is rounded separately (the numba kernel fuses the accumulation like CUDA: ≲1 ulp apart)."""
    feat = cfg.n_features_per_level
    x = x.detach()
    x64 = x.to(torch.float64)
    n = x.shape[0]
    dev = x.device
    one = torch.ones((), dtype=torch.float32, device=dev)
    outs = []
    for lv in grid_levels(cfg):
        table = level_table(params, lv, feat)
        pos = (x64 * lv.scale + 0.5).to(torch.float32)  # float32 position from an FMA
        cell_f = torch.floor(pos)
        frac = pos - cell_f  # [N,3] float32, exact
        cell = cell_f.to(torch.int64)
        if lv.dense:
            stride = torch.tensor([1, lv.resolution, lv.resolution**2], dtype=torch.int64, device=dev)
        else:
            stride = torch.tensor([PRIME_X, PRIME_Y, PRIME_Z], dtype=torch.int64, device=dev)
        lo = (cell * stride) & U32  # per-axis contribution of corner bit 0 ...
        hi = ((cell + 1) * stride) & U32  # ... and bit 1
        wlo, whi = one - frac, frac
        idx = torch.empty(n, 8, dtype=torch.int64, device=dev)
        w = torch.empty(n, 8, dtype=torch.float32, device=dev)
        for c in range(8):
            bits = [(c >> d) & 1 for d in range(3)]
            parts = [(hi if b else lo)[:, d] for d, b in enumerate(bits)]
            if lv.dense:
                idx[:, c] = ((parts[0] + parts[1] + parts[2]) & U32) % lv.size
            else:
                idx[:, c] = (parts[0] ^ parts[1] ^ parts[2]) % lv.size
            wd = [(whi if b else wlo)[:, d] for d, b in enumerate(bits)]
            w[:, c] = (wd[0] * wd[1]) * wd[2]
        vals = table[idx.view(-1)].view(n, 8, feat)
        outs.append((w.unsqueeze(-1) * vals).sum(dim=1))
    return torch.cat(outs, dim=-1)
