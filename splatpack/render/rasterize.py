"""One rasterization function, two backends.

``rasterize(...)`` renders Gaussians from one camera. ``backend="cuda"`` calls
``gsplat.rasterization`` (CUDA kernels); ``backend="cpu"`` runs splatpack's own path —
projection and SH in torch (:mod:`~splatpack.render.projection`, :mod:`~splatpack.core.sh`)
and the compiled compositing kernel (:mod:`~splatpack.render.cpu_backend`).
``backend="auto"`` picks CUDA when the tensors live on a CUDA device and gsplat's kernels
load, the CPU otherwise. Both return the ``info`` keys gsplat's densification strategies
read (``means2d``, ``radii``, ``width``, ``height``, ``n_cameras``, ``gaussian_ids``).
"""

from __future__ import annotations

import functools
from typing import Literal

import torch
from torch import Tensor

from splatpack.core.errors import SplatpackError
from splatpack.core.sh import sh_to_color
from splatpack.render.cpu_backend import composite_cpu, project_cpu, sh_color_cpu
from splatpack.render.projection import project_gaussians
from splatpack.render.reference import composite_dense, composite_torch_tiled

Backend = Literal["auto", "cpu", "cuda"]
CpuImpl = Literal["kernel", "torch_tiled", "dense"]
_COMPOSITORS = {"kernel": composite_cpu, "torch_tiled": composite_torch_tiled, "dense": composite_dense}


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when a CUDA device is present and gsplat's CUDA kernels load."""
    if not torch.cuda.is_available():
        return False
    try:
        from gsplat.cuda._backend import _C

        return _C is not None
    except Exception:  # pragma: no cover - depends on the machine
        return False


def resolve_backend(backend: Backend) -> str:
    if backend == "auto":
        return "cuda" if cuda_available() else "cpu"
    if backend == "cuda" and not cuda_available():
        raise SplatpackError("backend 'cuda' requested but no CUDA device with gsplat kernels is available")
    return backend


def rasterize(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    sh_degree: int | None = None,
    background: Tensor | None = None,
    backend: Backend = "auto",
    cpu_impl: CpuImpl = "kernel",
    antialiased: bool = False,
) -> tuple[Tensor, Tensor, dict]:
    """Render one view.

    Args:
        means [N,3], quats [N,4] (wxyz, any norm), scales [N,3] (linear), opacities [N] in (0,1).
        colors: SH coefficients [N, K, 3] when ``sh_degree`` is given, else colours [N, C].
        viewmat: world-to-camera [4,4] (OpenCV axes); K: intrinsics [3,3].
        background: [C] colour composited behind (default black).
        cpu_impl: CPU only — ``kernel`` (compiled projection, SH and compositing), or the
            pure-torch ``torch_tiled`` (baseline) / ``dense`` (reference) formulations.

    Returns:
        image [H, W, C], alpha [H, W], info dict.
    """
    backend = resolve_backend(backend)
    n_ch = colors.shape[-1]
    if background is None:
        background = torch.zeros(n_ch, dtype=means.dtype, device=means.device)
    if backend == "cuda":
        return _rasterize_gsplat(
            means, quats, scales, opacities, colors, viewmat, K, width, height, sh_degree, background, antialiased
        )
    campos = torch.linalg.inv(viewmat)[:3, 3]
    if cpu_impl == "kernel" and not antialiased:
        means2d, conics, depths, radii = project_cpu(means, quats, scales, opacities, viewmat, K, width, height)
        if sh_degree is not None:
            colors = sh_color_cpu(sh_degree, colors, means, campos, radii)
    else:
        proj = project_gaussians(means, quats, scales, opacities, viewmat, K, width, height, antialiased=antialiased)
        means2d, conics, depths, radii, opacities = proj.means2d, proj.conics, proj.depths, proj.radii, proj.opacities
        if sh_degree is not None:
            colors = sh_to_color(sh_degree, colors, means - campos)
    means2d = means2d[None]  # [1, N, 2]: the tensor whose .grad densification reads
    image, alpha = _COMPOSITORS[cpu_impl](
        means2d[0], conics, colors, opacities, radii, depths.detach(), background, width, height
    )
    info = {
        "means2d": means2d,
        "radii": radii[None],
        "depths": depths[None],
        "conics": conics[None],
        "width": width,
        "height": height,
        "n_cameras": 1,
        "gaussian_ids": None,
        "backend": "cpu",
    }
    return image, alpha, info


def _rasterize_gsplat(
    means, quats, scales, opacities, colors, viewmat, K, width, height, sh_degree, background, antialiased
):
    from gsplat import rasterization

    renders, alphas, info = rasterization(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmat[None],
        K[None],
        width,
        height,
        sh_degree=sh_degree,
        backgrounds=background[None],
        packed=False,
        rasterize_mode="antialiased" if antialiased else "classic",
    )
    info = dict(info)
    info["backend"] = "cuda"
    return renders[0], alphas[0, ..., 0], info


def warm_up(backend: Backend = "auto", sh_degree: int = 1) -> None:
    """Render a tiny scene forward and backward once, so that the CPU backend's compiled kernels
    (numba, cached on disk after the first run) are built or loaded now rather than inside the
    first training step. Nothing to do on CUDA (gsplat compiles on import)."""
    if resolve_backend(backend) != "cpu":
        return
    g = torch.Generator().manual_seed(0)
    n, k = 16, (sh_degree + 1) ** 2
    means = (torch.rand(n, 3, generator=g) - 0.5).requires_grad_()
    means.data[:, 2] += 3.0
    quats = torch.randn(n, 4, generator=g).requires_grad_()
    scales = torch.full((n, 3), 0.1).requires_grad_()
    opacities = torch.full((n,), 0.5).requires_grad_()
    colors = torch.rand(n, k, 3, generator=g).requires_grad_()
    K = torch.tensor([[32.0, 0, 16], [0, 32.0, 16], [0, 0, 1]])
    image, alpha, _ = rasterize(
        means, quats, scales, opacities, colors, torch.eye(4), K, 32, 32, sh_degree=sh_degree, backend="cpu"
    )
    (image.sum() + alpha.sum()).backward()
