"""How much each Gaussian's parameters move the renders: per-Gaussian render sensitivity.

A small error δ in parameter θ_i changes a render I by J_i δ (J_i = ∂I/∂θ_i), so its squared
error is ‖J_i δ‖². Compressed 3DGS (Niedermayr, Stumpfegger & Westermann, CVPR 2024, §4.1,
eq. 5) ranks parameters by the gradient of the image *sum*; here the quantity that predicts a
quantisation error's cost is the squared Jacobian norm itself, estimated without forming J by
random projection (Hutchinson's estimator): for z ~ N(0, I) over the pixels,

    E_z[(zᵀ J_i)²] = ‖J_i‖²,

so one backward pass of zᵀI per view and probe gives it for every Gaussian and parameter at
once. :func:`render_sensitivity` sums it over orbit views and divides by the views' pixel count:
s_i,a · δ² is then the mean squared error that an error δ in every channel of attribute a of
Gaussian i adds to a view (averaged over a's channels, to first order). The grid codec turns it
into per-Gaussian precision (:mod:`splatpack.codecs.grid.lowbits`, ``drop_fraction``).
"""

from __future__ import annotations

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.render.camera import orbit_cameras
from splatpack.render.gaussians import render_gaussians

__all__ = ["SENSITIVITY_ATTRIBUTES", "render_sensitivity"]

#: the parameters measured, in :class:`~splatpack.core.GaussianSet`'s unconstrained form
SENSITIVITY_ATTRIBUTES = ("means", "quats", "scales", "opacities", "sh0", "shN")


def render_sensitivity(
    gs: GaussianSet, views: int = 12, size: int = 192, probes: int = 2, seed: int = 0
) -> dict[str, np.ndarray]:
    """Per attribute of :data:`SENSITIVITY_ATTRIBUTES` (``shN`` only when the degree is > 0),
    s [N] float64: E‖∂I/∂θ‖² per channel of the attribute, summed over ``views`` orbit views of
    ``size``² pixels (on black) and divided by their pixel count, estimated with ``probes``
    Gaussian probes per view from a generator seeded with ``seed`` (deterministic)."""
    n = len(gs)
    names = [a for a in SENSITIVITY_ATTRIBUTES if a != "shN" or gs.shN.shape[1]]
    total = {a: np.zeros(n) for a in names}
    if n == 0:
        return total
    leaves = {a: getattr(gs, a).detach().float().cpu().clone().requires_grad_(True) for a in SENSITIVITY_ATTRIBUTES}
    probe = GaussianSet(**leaves)
    poses, K = orbit_cameras(gs.means, views, size, 60.0, phase=0.13)  # not the bench's views
    kt = torch.from_numpy(K).float()
    gen = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for c2w in poses:
            vm = torch.from_numpy(np.linalg.inv(c2w)).float()
            for _ in range(probes):
                for leaf in leaves.values():
                    leaf.grad = None
                image, _, _ = render_gaussians(probe, vm, kt, size, size, background=torch.zeros(3), backend="cpu")
                z = torch.randn(image.shape, generator=gen)
                (z * image).sum().backward()
                for a in names:
                    g = leaves[a].grad
                    if g is not None:
                        total[a] += g.double().reshape(n, -1).pow(2).mean(1).numpy()
    scale = 1.0 / (probes * views * size * size)
    return {a: v * scale for a, v in total.items()}
