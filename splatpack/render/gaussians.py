"""The one adapter from a :class:`~splatpack.core.GaussianSet` to :func:`~splatpack.render.rasterize`."""

from __future__ import annotations

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.render.rasterize import rasterize

__all__ = ["render_gaussians", "render_image", "render_views"]


def render_gaussians(
    gs: GaussianSet,
    viewmat: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    *,
    background: torch.Tensor | None = None,
    backend: str = "auto",
    sh_degree: int | None = None,
):
    """Rasterize ``gs`` from one camera (world→camera ``viewmat`` [4, 4], intrinsics ``K`` [3, 3],
    on the Gaussians' device): ``(image [H, W, 3], alpha [H, W], info)`` as :func:`rasterize`
    returns them, with every SH band of ``gs`` unless ``sh_degree`` is given."""
    return rasterize(
        gs.means,
        gs.quats,
        gs.linear_scales,
        gs.alphas,
        gs.sh,
        viewmat,
        K,
        width,
        height,
        sh_degree=gs.sh_degree if sh_degree is None else sh_degree,
        background=background,
        backend=backend,
    )


def render_image(gs: GaussianSet, c2w: np.ndarray, K: np.ndarray, width: int, height: int, background, backend="auto"):
    """The image [H, W, 3] in [0, 1] of ``gs`` seen by an OpenCV camera-to-world pose ``c2w``
    (numpy), on the CUDA device when the backend is (or ``auto`` finds) CUDA."""
    dev = "cuda" if backend == "cuda" or (backend == "auto" and torch.cuda.is_available()) else "cpu"
    g = gs.to(dev)
    vm = torch.from_numpy(np.linalg.inv(c2w)).float().to(dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    img, _, _ = render_gaussians(
        g, vm, torch.from_numpy(K).float().to(dev), width, height, background=bg, backend=backend
    )
    return img.clamp(0, 1)


@torch.no_grad()
def render_views(gs: GaussianSet, poses: np.ndarray, K: np.ndarray, size: int) -> list[torch.Tensor]:
    """``size``² renders [H, W, 3] of ``gs`` on black from each camera-to-world pose of ``poses``
    (one ``K``), with the CPU kernels: the renders compressed files are compared by."""
    return [render_image(gs, c2w, K, size, size, background=(0.0, 0.0, 0.0), backend="cpu") for c2w in poses]
