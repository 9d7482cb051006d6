"""Real spherical harmonics up to degree 3, for view-dependent colour.

The basis and its constants are those of the 3DGS reference code and gsplat
(``_eval_sh_bases_fast``): Y_0 = 0.2820948, Y_1 = 0.4886025·(−y, z, −x), and so on. Colours
are ``max(Σ_k c_k Y_k(d) + 0.5, 0)`` as in gsplat's ``rasterization`` (the DC term of an
INRIA PLY stores ``(rgb − 0.5) / Y_0``).
"""

from __future__ import annotations

import torch
from torch import Tensor

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def num_sh_bases(degree: int) -> int:
    """Number of SH coefficients per channel for a given degree: (d + 1)²."""
    return (degree + 1) ** 2


def sh_degree_from_bases(k: int) -> int:
    d = int(round(k**0.5)) - 1
    if (d + 1) ** 2 != k:
        raise ValueError(f"{k} is not a square number of SH coefficients")
    return d


def eval_sh_bases(degree: int, dirs: Tensor) -> Tensor:
    """SH basis functions Y_k(d) for unit directions ``dirs`` [..., 3] → [..., (degree+1)²]."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [
            SH_C2[0] * xy,
            SH_C2[1] * yz,
            SH_C2[2] * (2.0 * zz - xx - yy),
            SH_C2[3] * xz,
            SH_C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            SH_C3[0] * y * (3 * xx - yy),
            SH_C3[1] * xy * z,
            SH_C3[2] * y * (4 * zz - xx - yy),
            SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            SH_C3[4] * x * (4 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def sh_to_color(degree: int, coeffs: Tensor, dirs: Tensor) -> Tensor:
    """Evaluate SH colour: ``coeffs`` [N, K, 3] (K ≥ (degree+1)²), ``dirs`` [N, 3] (any norm).

    Returns ``max(Σ_k c_k Y_k(d) + 0.5, 0)`` [N, 3].
    """
    k = num_sh_bases(degree)
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    bases = eval_sh_bases(degree, dirs)  # [N, k]
    rgb = (bases.unsqueeze(-1) * coeffs[:, :k, :]).sum(dim=-2)
    return torch.clamp_min(rgb + 0.5, 0.0)


def rgb_to_sh(rgb: Tensor) -> Tensor:
    """DC coefficient that reproduces ``rgb``: (rgb − 0.5) / Y_0."""
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(sh0: Tensor) -> Tensor:
    return sh0 * SH_C0 + 0.5


def sh_rotation(degree: int, rotation: Tensor) -> Tensor:
    """The matrix M [K, K] (K = (degree+1)²) that rotates SH coefficients with the scene: for a
    world rotation R (``rotation`` [3, 3]), the colour c'(d) = c(Rᵀd) of a rotated Gaussian has
    coefficients M @ c. Each band is closed under rotation, so M is exact when fitted by least
    squares on more directions than coefficients: M = Y(D)⁺ Y(RᵀD) over a Fibonacci sphere D."""
    n = 4 * (degree + 1) ** 2 + 16
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / n
    phi = i * torch.pi * (3 - 5**0.5)
    r = torch.sqrt(1 - z * z)
    d = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)  # [n, 3]
    y = eval_sh_bases(degree, d)  # [n, K]
    y_turned = eval_sh_bases(degree, d @ rotation.double())  # rows Rᵀd (d @ R = (Rᵀ d)ᵀ)
    return torch.linalg.lstsq(y, y_turned).solution.to(rotation.dtype)
