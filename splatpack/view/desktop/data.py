"""Gaussians as the desktop viewer's shaders read them, and the per-pose visibility sort."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.render.projection import covariance_3d

NEAR_PLANE = 0.01  # the CPU renderer's near plane
EPS2D = 0.3  # low-pass filter added to the 2D covariance (pixels²)
ALPHA_MIN = 1.0 / 255.0


@dataclass
class SplatData:
    """Gaussians as the shaders read them: float32 arrays, opacity already through the sigmoid,
    Gaussians with opacity < 1/255 dropped (the CPU renderer never draws them)."""

    means: np.ndarray  # [N, 3]
    opacities: np.ndarray  # [N]
    covariances: np.ndarray  # [N, 6]: Σxx, Σxy, Σxz, Σyy, Σyz, Σzz
    sh: np.ndarray  # [N, K, 3]
    sh_degree: int

    @classmethod
    def from_gaussians(cls, gs: GaussianSet) -> SplatData:
        with torch.no_grad():
            alphas = gs.alphas.detach().cpu().double()
            keep = alphas >= ALPHA_MIN
            cov = covariance_3d(gs.quats[keep].detach().cpu().double(), gs.linear_scales[keep].detach().cpu().double())
            iu = ([0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2])
            return cls(
                means=gs.means[keep].detach().cpu().numpy().astype(np.float32),
                opacities=alphas[keep].numpy().astype(np.float32),
                covariances=cov[:, iu[0], iu[1]].numpy().astype(np.float32),
                sh=gs.sh[keep].detach().cpu().numpy().astype(np.float32),
                sh_degree=gs.sh_degree,
            )

    def __len__(self) -> int:
        return self.means.shape[0]


def texture_rows(texels: np.ndarray, width: int) -> np.ndarray:
    """Texels [M, 4] laid out row-major in a [H, width, 4] array (zero padded)."""
    h = max(1, -(-texels.shape[0] // width))
    out = np.zeros((h * width, 4), np.float32)
    out[: texels.shape[0]] = texels
    return out.reshape(h, width, 4)


def visible_back_to_front(data: SplatData, viewmat: np.ndarray, K: np.ndarray, width: int, height: int) -> np.ndarray:
    """Indices (uint32) of the Gaussians that can touch the image, farthest first.

    Order: the exact reverse of the CPU compositor's stable front-to-back sort on camera depth.
    Culling: behind the near plane, or off-screen by a conservative pixel radius
    ext·√(‖J‖²_F·tr Σ + 0.3) + 1 ≥ the CPU renderer's ⌈ext·√Σ'_ii⌉ (tr Σ ≥ λ_max(Σ), the
    Frobenius norm of the unclamped Jacobian ≥ the clamped one's spectral norm). On llvmpipe
    every drawn instance costs setup time even when clipped, so this pays off when zoomed in.
    """
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    p = data.means @ viewmat[:3, :3].T.astype(np.float32) + viewmat[:3, 3].astype(np.float32)
    z = p[:, 2]
    front = z > NEAR_PLANE
    zs = np.where(front, z, np.float32(1.0))
    ux, uy = p[:, 0] / zs, p[:, 1] / zs
    jacobian_sq = (fx * fx * (1 + ux * ux) + fy * fy * (1 + uy * uy)) / (zs * zs)
    trace = data.covariances[:, 0] + data.covariances[:, 3] + data.covariances[:, 5]
    ext = np.sqrt(2.0 * np.log(np.maximum(255.0 * data.opacities, 1.0)))
    r = ext * np.sqrt(jacobian_sq * trace + EPS2D) + 1.0
    mx, my = fx * ux + cx, fy * uy + cy
    idx = np.flatnonzero(front & (mx + r > 0) & (mx - r < width) & (my + r > 0) & (my - r < height))
    order = idx[np.argsort(z[idx], kind="stable")[::-1]]
    return np.ascontiguousarray(order, dtype=np.uint32)
