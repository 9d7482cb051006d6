"""Smoothness loss on sorted attribute grids (Morgenstern et al., "Compact 3D Scene
Representation via Self-Organizing Gaussian Grids", ECCV 2024, §3.3).

After PLAS (:func:`splatpack.compress.grid_sort.sort_into_grid`) has placed the Gaussians on an
H×W grid, every attribute is an image ``A`` [H, W, C]. Training adds, per attribute group ``a``,

    L_nb = Σ_a λ_a · Huber_δ( A_a , G_σ * A_a ),

the Huber distance between the grid and its Gaussian-blurred copy (kernel 5×5, σ = 3 in the
paper), with gradients through both terms: it pulls each Gaussian towards its grid neighbours,
so the planes stay smooth while the scene trains and compress well as images.

Differences from the reference, both for grids that are not full squares: cells without a
Gaussian (index −1) are left out of the blur by normalised convolution,
``G * (A·M) / G * M`` with the occupancy mask ``M``, and out of the mean; the blur pads by
reflection. Each group is divided by its per-channel standard deviation (detached) so one
weight means the same for positions in metres and colours in SH units.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from splatpack.metrics.image import gaussian_window


def blur_grid(grid: Tensor, mask: Tensor, size: int = 5, sigma: float = 3.0) -> Tensor:
    """Separable Gaussian blur of ``grid`` [H, W, C] over occupied cells ``mask`` [H, W]
    (normalised convolution; reflect padding). Returns [H, W, C]."""
    H, W, C = grid.shape
    k = gaussian_window(size, sigma, grid.dtype, grid.device)
    p = size // 2
    m = mask.to(grid.dtype)
    x = torch.cat([(grid * m[..., None]).permute(2, 0, 1), m[None]], 0)[None]  # [1, C+1, H, W]
    if min(H, W) > p:
        x = F.pad(x, (p, p, p, p), mode="reflect")
    else:  # tiny grids: zero padding (the mask channel renormalises)
        x = F.pad(x, (p, p, p, p))
    ch = C + 1
    x = F.conv2d(x, k.view(1, 1, 1, size).expand(ch, 1, 1, size), groups=ch)
    x = F.conv2d(x, k.view(1, 1, size, 1).expand(ch, 1, size, 1), groups=ch)
    x = x[0]
    return (x[:C] / x[C:].clamp_min(1e-8)).permute(1, 2, 0)


def grid_smoothness_loss(
    attributes: dict[str, Tensor],
    grid_index: Tensor,
    weights: dict[str, float],
    size: int = 5,
    sigma: float = 3.0,
    delta: float = 1.0,
) -> Tensor:
    """Σ_a λ_a · mean Huber(A_a, blur(A_a)) over the occupied cells.

    Args:
        attributes: name → [N, ...] per-Gaussian tensors (flattened to [N, C]).
        grid_index: [H, W] long, the Gaussian at each cell, −1 for empty cells.
        weights: name → λ_a; names absent or with λ = 0 are skipped.
    """
    mask = grid_index >= 0
    flat = grid_index.clamp_min(0).reshape(-1)
    total = None
    for name, lam in weights.items():
        if not lam or name not in attributes:
            continue
        a = attributes[name].reshape(attributes[name].shape[0], -1)
        std = a.detach().std(0, keepdim=True).clamp_min(1e-6) if a.shape[0] > 1 else torch.ones_like(a[:1])
        g = (a / std)[flat].reshape(*grid_index.shape, a.shape[1])
        b = blur_grid(g, mask, size, sigma)
        h = F.huber_loss(g, b, reduction="none", delta=delta).mean(-1)
        term = lam * h[mask].mean()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros((), device=grid_index.device)
    return total
