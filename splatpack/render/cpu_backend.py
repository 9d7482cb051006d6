"""Differentiable CPU compositing: a torch autograd function over the numba kernels.

Projection and SH evaluation stay in torch (autograd differentiates them); only the
per-pixel compositing — the part gsplat runs in CUDA — is a custom function whose backward
is the hand-written kernel of :mod:`splatpack.render.cpu_kernels`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from splatpack.render import cpu_kernels as K
from splatpack.render import cpu_projection as P


def _np(t: Tensor, dtype=np.float32) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype, copy=False))


def _channel_groups(x: np.ndarray) -> list[np.ndarray]:
    """Split the last axis into contiguous groups of ``NCH`` channels, zero-padding the last."""
    c = x.shape[-1]
    n = -(-c // K.NCH)
    pad = np.zeros(x.shape[:-1] + (n * K.NCH,), np.float32)
    pad[..., :c] = x
    return [np.ascontiguousarray(pad[..., i * K.NCH : (i + 1) * K.NCH]) for i in range(n)]


class CompositeCPU(torch.autograd.Function):
    """(means2d, conics, colors, opacities) → (image [H,W,C], alpha [H,W]).

    The kernels composite ``NCH`` = 4 channels per call; RGB is padded, wider colours run in
    groups (transmittance is the same for every group; the geometric gradients are linear in
    the per-channel terms and are summed over groups).
    """

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, radii, depths, background, width, height, tile_size):
        m2, co, op = _np(means2d), _np(conics), _np(opacities)
        rd = _np(radii, np.int32)
        n_ch = colors.shape[1]
        cl_groups = _channel_groups(_np(colors)) if len(colors) else [np.zeros((0, K.NCH), np.float32)]
        bg_groups = _channel_groups(_np(background)[None])
        tw = (width + tile_size - 1) // tile_size
        th = (height + tile_size - 1) // tile_size
        offsets, flat = K.isect_tiles(m2, rd, _np(depths), tile_size, tw, th)
        images, packs = [], []
        for cl, bg in zip(cl_groups, bg_groups):
            packed = K.gather_intersections(m2, co, cl, op, rd, flat)
            image, T_final, last = K.rasterize_forward(packed, bg[0], offsets, width, height, tile_size)
            images.append(image)
            packs.append(packed)
        image = np.concatenate(images, axis=-1)[..., :n_ch]
        ctx.arrays = (packs, bg_groups, offsets, flat, T_final, last, len(m2))
        ctx.dims = (width, height, tile_size, n_ch)
        ctx.dtype = means2d.dtype
        return torch.from_numpy(image).to(means2d.dtype), torch.from_numpy(1.0 - T_final).to(means2d.dtype)

    @staticmethod
    def backward(ctx, v_image, v_alpha):
        packs, bg_groups, offsets, flat, T_final, last, n = ctx.arrays
        width, height, tile_size, n_ch = ctx.dims
        v_img = _np(v_image) if v_image is not None else np.zeros(T_final.shape + (n_ch,), np.float32)
        v_a = _np(v_alpha) if v_alpha is not None else np.zeros_like(T_final)
        geo, v_cols = 0.0, []
        for i, (packed, bg, vg) in enumerate(zip(packs, bg_groups, _channel_groups(v_img))):
            g_isect = K.rasterize_backward(
                packed,
                bg[0],
                offsets,
                width,
                height,
                tile_size,
                T_final,
                last,
                vg,
                v_a if i == 0 else np.zeros_like(v_a),
            )
            g = K.sum_per_gaussian(g_isect, flat, n)
            geo = geo + g[:, :6]
            v_cols.append(g[:, 6:])
        g = torch.from_numpy(np.concatenate([geo] + v_cols, axis=1)).to(ctx.dtype)
        return g[:, 0:2], g[:, 2:5], g[:, 6 : 6 + n_ch], g[:, 5], None, None, None, None, None, None


class ProjectCPU(torch.autograd.Function):
    """(means, quats, scales) → (means2d, conics, depths); radii as a non-differentiable output."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmat, K_, width, height, eps2d, near, far):
        arrs = (_np(means), _np(quats), _np(scales))
        vm, kk = _np(viewmat, np.float64), _np(K_, np.float64)
        m2, conics, depths, radii = P.project_forward(*arrs, _np(opacities), vm, kk, width, height, eps2d, near, far)
        ctx.saved = (arrs, vm, kk, width, height, eps2d, radii)
        ctx.dtype = means.dtype
        radii_t = torch.from_numpy(radii)
        ctx.mark_non_differentiable(radii_t)
        dt = means.dtype
        return torch.from_numpy(m2).to(dt), torch.from_numpy(conics).to(dt), torch.from_numpy(depths).to(dt), radii_t

    @staticmethod
    def backward(ctx, v_m2, v_conics, v_depths, _v_radii):
        arrs, vm, kk, width, height, eps2d, radii = ctx.saved
        n = arrs[0].shape[0]
        z2 = np.zeros((n, 2), np.float32)
        vm2 = _np(v_m2) if v_m2 is not None else z2
        vc = _np(v_conics) if v_conics is not None else np.zeros((n, 3), np.float32)
        vd = _np(v_depths) if v_depths is not None else np.zeros(n, np.float32)
        v_means, v_quats, v_scales = P.project_backward(*arrs, vm, kk, width, height, eps2d, radii, vm2, vc, vd)
        dt = ctx.dtype
        return (
            torch.from_numpy(v_means).to(dt),
            torch.from_numpy(v_quats).to(dt),
            torch.from_numpy(v_scales).to(dt),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )


class SHColorCPU(torch.autograd.Function):
    """(SH coefficients [N,K,3], means) → colours [N,3] seen from ``campos``."""

    @staticmethod
    def forward(ctx, degree, coeffs, means, campos, radii):
        c, m, cp, rd = _np(coeffs), _np(means), _np(campos, np.float64), _np(radii, np.int32)
        colors = P.sh_forward(degree, c, m, cp, rd)
        ctx.saved = (degree, c, m, cp, rd, colors)
        ctx.dtype = coeffs.dtype
        return torch.from_numpy(colors).to(coeffs.dtype)

    @staticmethod
    def backward(ctx, v_colors):
        degree, c, m, cp, rd, colors = ctx.saved
        v_coeffs, v_means = P.sh_backward(degree, c, m, cp, rd, colors, _np(v_colors))
        return None, torch.from_numpy(v_coeffs).to(ctx.dtype), torch.from_numpy(v_means).to(ctx.dtype), None, None


def project_cpu(means, quats, scales, opacities, viewmat, K_, width, height, eps2d=0.3, near=0.01, far=1e10):
    """Compiled EWA projection → (means2d [N,2], conics [N,3], depths [N], radii [N,2])."""
    return ProjectCPU.apply(means, quats, scales, opacities, viewmat, K_, width, height, eps2d, near, far)


def sh_color_cpu(degree: int, coeffs: Tensor, means: Tensor, campos: Tensor, radii: Tensor) -> Tensor:
    """Compiled SH evaluation (zero colour for culled Gaussians)."""
    return SHColorCPU.apply(degree, coeffs, means, campos, radii)


def composite_cpu(
    means2d: Tensor,
    conics: Tensor,
    colors: Tensor,
    opacities: Tensor,
    radii: Tensor,
    depths: Tensor,
    background: Tensor,
    width: int,
    height: int,
    tile_size: int = K.TILE_SIZE,
) -> tuple[Tensor, Tensor]:
    """Composite projected Gaussians into an image [H, W, C] and alpha map [H, W]."""
    return CompositeCPU.apply(means2d, conics, colors, opacities, radii, depths, background, width, height, tile_size)
