"""EWA projection of 3D Gaussians to the image plane (Zwicker et al. 2002; Kerbl et al. 2023).

Pure torch, differentiable by autograd, for one pinhole camera. It follows gsplat's
``fully_fused_projection`` conventions exactly (world→camera, the perspective Jacobian with
the view-frustum clamp of tx/tz at 1.3·tan(fov/2), the 0.3 px low-pass filter added to the 2D
covariance, conics ``(a, b, c)`` with Σ'⁻¹ = [[a, b], [b, c]], near plane 0.01), with one
refinement: the screen-space radius is *opacity-aware*. A pixel at Mahalanobis distance r
from the mean has α = o·exp(−r²/2), which falls under the 1/255 skip threshold when
r > √(2 ln(255·o)); that bound (≤ 3.33 for o ≤ 1, gsplat's fixed factor) gives the per-axis
radius ⌈√(2 ln 255 o)·√Σ'_ii⌉. It is exact — no pixel outside it can contribute — and cuts
the tile lists of faint Gaussians. Gaussians with o < 1/255 get radius 0.

The transform Σ' = J W Σ Wᵀ Jᵀ (Σ = R S Sᵀ Rᵀ from a unit quaternion ``wxyz`` and scales) is
EWA splatting's eq. (31).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Unit-normalised ``wxyz`` quaternions [N, 4] → rotation matrices [N, 3, 3]."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quats.shape[:-1] + (3, 3))


def covariance_3d(quats: Tensor, scales: Tensor) -> Tensor:
    """Σ = R S Sᵀ Rᵀ [N, 3, 3] from quaternions [N, 4] and (linear) scales [N, 3]."""
    m = quat_to_rotmat(quats) * scales.unsqueeze(-2)
    return m @ m.transpose(-1, -2)


@dataclass
class Projection:
    """Screen-space Gaussians for one camera (all [N, …]; invisible ones have radii 0)."""

    means2d: Tensor  # [N, 2] pixel coordinates
    conics: Tensor  # [N, 3] inverse 2D covariance (a, b, c)
    depths: Tensor  # [N] camera-space z
    radii: Tensor  # [N, 2] int32, per-axis pixel radius (0 = culled)
    opacities: Tensor  # [N] after the sigmoid (and compensation when antialiased)
    cov2d: Tensor  # [N, 2, 2] with the low-pass term


def project_gaussians(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    antialiased: bool = False,
) -> Projection:
    """Project Gaussians (world means [N,3], quats [N,4], *linear* scales [N,3], opacities [N]
    in (0, 1)) through the world-to-camera ``viewmat`` [4,4] and intrinsics ``K`` [3,3]."""
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    means_c = means @ R.T + t
    cov_c = R @ covariance_3d(quats, scales) @ R.T

    tx, ty, tz = means_c.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    tz_safe = torch.where(tz.abs() < 1e-6, torch.full_like(tz, 1e-6), tz)
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    txc = tz_safe * torch.clamp(tx / tz_safe, -lim_x_neg, lim_x_pos)
    tyc = tz_safe * torch.clamp(ty / tz_safe, -lim_y_neg, lim_y_pos)
    zeros = torch.zeros_like(tz)
    J = torch.stack(
        [fx / tz_safe, zeros, -fx * txc / tz_safe**2, zeros, fy / tz_safe, -fy * tyc / tz_safe**2], dim=-1
    ).reshape(-1, 2, 3)
    cov2d = J @ cov_c @ J.transpose(-1, -2)
    det_orig = cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]
    cov2d = cov2d + eps2d * torch.eye(2, dtype=means.dtype, device=means.device)
    det = (cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]).clamp_min(1e-10)
    conics = torch.stack(
        [cov2d[:, 1, 1] / det, -0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]) / det, cov2d[:, 0, 0] / det], dim=-1
    )
    if antialiased:  # Mip-Splatting's 2D filter compensation (gsplat's rasterize_mode="antialiased")
        opacities = opacities * torch.sqrt(torch.clamp_min(det_orig / det, 0.0))
    means2d = torch.stack([fx * tx / tz_safe + cx, fy * ty / tz_safe + cy], dim=-1)

    with torch.no_grad():
        extent = torch.sqrt(2.0 * torch.log(torch.clamp_min(opacities.detach() * 255.0, 1.0)))
        rx = torch.ceil(extent * torch.sqrt(cov2d[:, 0, 0].detach()))
        ry = torch.ceil(extent * torch.sqrt(cov2d[:, 1, 1].detach()))
        m = means2d.detach()
        valid = (
            (det > 0)
            & (tz > near_plane)
            & (tz < far_plane)
            & (opacities.detach() >= ALPHA_THRESHOLD)
            & (m[:, 0] + rx > 0)
            & (m[:, 0] - rx < width)
            & (m[:, 1] + ry > 0)
            & (m[:, 1] - ry < height)
            & torch.isfinite(m).all(-1)
        )
        radii = torch.stack([rx, ry], dim=-1)
        radii = torch.where(valid[:, None], radii, torch.zeros_like(radii)).to(torch.int32)
    return Projection(means2d, conics, tz, radii, opacities, cov2d)


def fov_to_focal(fov: float, pixels: int) -> float:
    return 0.5 * pixels / math.tan(0.5 * fov)
