"""Bake a view-dependent colour field into per-Gaussian spherical harmonics.

Every 3DGS viewer understands SH, none understands a hash-grid colour field, so
``splatpack decompress`` turns a compact scene into an ordinary INRIA PLY by fitting, for each
Gaussian i, degree-3 SH coefficients c_i ∈ R^{16×3} to the field's colours over a set of view
directions d_j (regularised, weighted least squares):

    c_i = argmin_c Σ_j w_j ‖B(d_j) c − SH_C0·f(μ_i, d_j)‖² + λ‖c‖²
        = (Bᵀ W B + λI)⁻¹ Bᵀ W T_i,

where B(d) is the real SH basis (the renderer's colour is B(d)c + 0.5, and the field's is
SH_C0·f + 0.5). The directions are a Fibonacci sphere (all views) plus the directions from the
Gaussian to the capture's training cameras when the file stores them (weighted higher: those are
the directions the field was trained on; others are extrapolation).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from splatpack.core.sh import SH_C0, eval_sh_bases


def fibonacci_sphere(n: int) -> Tensor:
    """n nearly uniform unit vectors [n, 3]."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    phi = torch.acos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    return torch.stack(
        [torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], -1
    ).float()


@torch.no_grad()
def bake_sh(
    field,
    means: Tensor,
    camera_centers: Tensor | None = None,
    degree: int = 3,
    num_sphere: int = 64,
    camera_weight: float = 4.0,
    ridge: float = 1e-4,
    chunk: int = 8192,
) -> Tensor:
    """SH coefficients [N, (degree+1)², 3] reproducing ``field`` at each Gaussian."""
    sphere = fibonacci_sphere(num_sphere)
    k = (degree + 1) ** 2
    out = torch.empty(means.shape[0], k, 3)
    eye = torch.eye(k) * ridge
    for a in range(0, means.shape[0], chunk):
        mu = means[a : a + chunk].float()
        m = mu.shape[0]
        dirs = sphere[None].expand(m, -1, -1)
        w = torch.ones(m, num_sphere)
        if camera_centers is not None and len(camera_centers):
            cd = torch.nn.functional.normalize(mu[:, None, :] - camera_centers[None].float(), dim=-1)
            dirs = torch.cat([dirs, cd], 1)
            w = torch.cat([w, torch.full((m, cd.shape[1]), camera_weight)], 1)
        d = dirs.shape[1]
        flat = dirs.reshape(-1, 3)
        target = SH_C0 * field(mu.repeat_interleave(d, 0), flat).reshape(m, d, 3).double()
        B = eval_sh_bases(degree, flat).reshape(m, d, k).double()
        Bw = B * w[..., None].double()
        A = Bw.transpose(1, 2) @ B + eye.double()
        rhs = Bw.transpose(1, 2) @ target
        out[a : a + chunk] = torch.linalg.solve(A, rhs).float()
    return out
