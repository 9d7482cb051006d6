"""Training-free pruning by each Gaussian's measured contribution to renders.

A render is C(p) = Σ_i c_i α_i(p) T_i(p) (3DGS, Kerbl et al. 2023, eq. 3), so with a constant
colour c_i = 1 the gradient of the image's sum with respect to c_i is the Gaussian's total
blending weight over the pixels,

    w_i = Σ_views Σ_p α_i(p) T_i(p),

LightGaussian's global significance (Fan et al., NeurIPS 2024, eq. 5 with the volume term left
out): the share of the views' pixels each Gaussian paints. One backward pass per view gives all
of them (:func:`contributions`); Gaussians with the smallest w_i can be removed with the least
change to the renders (:func:`prune_lowest`), and :func:`prune_to_bound` removes the largest
fraction whose renders stay within a PSNR bound of the original's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.render.camera import orbit_cameras
from splatpack.render.rasterize import rasterize

__all__ = ["contributions", "kept_indices", "orbit_contributions", "prune_lowest", "prune_to_bound"]


def contributions(gs: GaussianSet, poses: np.ndarray, K: np.ndarray, size: int, backend: str = "cpu") -> Tensor:
    """w [N] float64: each Gaussian's blending weight Σ α T summed over the pixels of the views
    ``poses`` (OpenCV camera-to-world [V, 4, 4], intrinsics ``K``, ``size``² pixels)."""
    total = torch.zeros(len(gs), dtype=torch.float64)
    if len(gs) == 0:
        return total
    means, quats, scales, alphas = (t.detach() for t in (gs.means, gs.quats, gs.linear_scales, gs.alphas))
    kt = torch.from_numpy(np.asarray(K)).float()
    for c2w in poses:
        colours = torch.ones(len(gs), 1, requires_grad=True)
        vm = torch.from_numpy(np.linalg.inv(c2w)).float()
        with torch.enable_grad():  # the weights are a gradient, also when called under no_grad
            image, _, _ = rasterize(means, quats, scales, alphas, colours, vm, kt, size, size, backend=backend)
            image.sum().backward()
        total += colours.grad[:, 0].double()
    return total


def orbit_contributions(gs: GaussianSet, views: int = 16, size: int = 192) -> Tensor:
    """:func:`contributions` over ``views`` orbit cameras around the scene (no capture needed),
    the views the benchmark measures from (:func:`~splatpack.render.camera.orbit_cameras`)."""
    poses, K = orbit_cameras(gs.means, views, size, 60.0)
    return contributions(gs, poses, K, size)


def kept_indices(weights: Tensor, fraction: float) -> Tensor:
    """Increasing indices of the Gaussians left after dropping the ``fraction`` with the smallest
    ``weights`` (ties broken by index, so the result is deterministic)."""
    if not 0.0 <= fraction < 1.0:
        raise SplatpackError(f"the pruned fraction must be in [0, 1), not {fraction!r}")
    drop = int(round(fraction * len(weights)))
    order = torch.from_numpy(np.argsort(weights.numpy(), kind="stable"))
    return torch.sort(order[drop:]).values


def prune_lowest(gs: GaussianSet, weights: Tensor, fraction: float) -> GaussianSet:
    """``gs`` without the ``fraction`` of its Gaussians with the smallest ``weights``; the kept
    ones stay in their order (:func:`kept_indices`)."""
    keep = kept_indices(weights, fraction)
    return gs if len(keep) == len(gs) else gs.subset(keep)


def prune_to_bound(
    gs: GaussianSet,
    weights: Tensor,
    quality: Callable[[GaussianSet], float],
    bound: float,
    fractions: Sequence[float] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
) -> tuple[GaussianSet, float, float]:
    """(pruned set, fraction, its quality): the largest of ``fractions`` whose ``quality`` (e.g.
    PSNR of the pruned set's renders against the original's) is at least ``bound``, tried in
    increasing order and stopped at the first failure; (``gs``, 0, inf) when none passes."""
    best: tuple[GaussianSet, float, float] = (gs, 0.0, float("inf"))
    for f in sorted(fractions):
        pruned = prune_lowest(gs, weights, f)
        q = quality(pruned)
        if q < bound:
            break
        best = (pruned, f, q)
    return best
