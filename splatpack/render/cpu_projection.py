"""Compiled CPU kernels for EWA projection and SH colour, forward and backward.

The maths is that of :mod:`splatpack.render.projection` (the torch version, which autograd
differentiates and which the tests use as reference) and of gsplat's
``fully_fused_projection``/``spherical_harmonics`` CUDA kernels. Written as fused per-Gaussian
loops because torch autograd over ~60 small tensor ops costs ~0.5 s per iteration for 100k
Gaussians on two cores, where these loops take milliseconds.

Backward of the projection (per Gaussian; V_X denotes ∂L/∂X):

* conic = Σ'⁻¹:                 V_Σ' = −Σ'⁻¹ G Σ'⁻¹,  G = [[v_a, v_b/2], [v_b/2, v_c]]
* Σ' = J Σ_c Jᵀ + εI:           V_Σc = Jᵀ V_Σ' J,   V_J = 2 V_Σ' J Σ_c
* Σ_c = W Σ Wᵀ:                 V_Σ = Wᵀ V_Σc W
* Σ = M Mᵀ, M = R(q̂) diag(s):   V_M = 2 V_Σ M,  v_s_j = Σ_i R_ij (V_M)_ij,  V_R = V_M diag(s)
* q̂ = q/|q|:                   v_q = (v_q̂ − q̂ (q̂·v_q̂)) / |q|
* J(t) and μ' = (f_x t_x/t_z + c_x, f_y t_y/t_z + c_y) give V_t, and V_μ = Wᵀ V_t.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from splatpack.core.sh import SH_C0, SH_C1, SH_C2, SH_C3

_opts = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
ALPHA_MIN = 1.0 / 255.0


CHUNK = 1024  # Gaussians per parallel work item; scratch arrays are allocated once per chunk


@njit(inline="always")
def _mm(A, B, out):
    """out = A @ B for small matrices (no BLAS call, no allocation; pass ``X.T`` views to transpose)."""
    for i in range(A.shape[0]):
        for j in range(B.shape[1]):
            s = 0.0
            for k in range(A.shape[1]):
                s += A[i, k] * B[k, j]
            out[i, j] = s


@njit(inline="always")
def _camera_terms(means, quats, scales, g, W, t, fx, fy, cx, cy, width, height, Rq, M, S, Sc, J, tmp):
    """Forward terms shared by both passes, written into the scratch arrays
    Rq = R(q̂), M = Rq·diag(s), Sc = W Σ Wᵀ, J (2×3). Returns camera-space mean, clamp state
    and the unit quaternion."""
    qn = math.sqrt(quats[g, 0] ** 2 + quats[g, 1] ** 2 + quats[g, 2] ** 2 + quats[g, 3] ** 2) + 1e-30
    w, x, y, z = quats[g, 0] / qn, quats[g, 1] / qn, quats[g, 2] / qn, quats[g, 3] / qn
    Rq[0, 0], Rq[0, 1], Rq[0, 2] = 1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)
    Rq[1, 0], Rq[1, 1], Rq[1, 2] = 2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)
    Rq[2, 0], Rq[2, 1], Rq[2, 2] = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)
    for i in range(3):
        for j in range(3):
            M[i, j] = Rq[i, j] * scales[g, j]
    _mm(M, M.T, S)
    _mm(W, S, tmp)
    _mm(tmp, W.T, Sc)
    px = W[0, 0] * means[g, 0] + W[0, 1] * means[g, 1] + W[0, 2] * means[g, 2] + t[0]
    py = W[1, 0] * means[g, 0] + W[1, 1] * means[g, 1] + W[1, 2] * means[g, 2] + t[1]
    pz = W[2, 0] * means[g, 0] + W[2, 1] * means[g, 1] + W[2, 2] * means[g, 2] + t[2]
    tz = pz if abs(pz) >= 1e-6 else 1e-6
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lxp, lxn = (width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lyp, lyn = (height - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    ux, uy = px / tz, py / tz
    clip_x = ux < -lxn or ux > lxp
    clip_y = uy < -lyn or uy > lyp
    ux = min(max(ux, -lxn), lxp)
    uy = min(max(uy, -lyn), lyp)
    J[0, 0], J[0, 1], J[0, 2] = fx / tz, 0.0, -fx * ux / tz
    J[1, 0], J[1, 1], J[1, 2] = 0.0, fy / tz, -fy * uy / tz
    return px, py, pz, tz, ux, uy, clip_x, clip_y, w, x, y, z, qn


@njit(parallel=True, **_opts)
def project_forward(means, quats, scales, opacities, viewmat, K, width, height, eps2d, near, far):
    """→ means2d [N,2], conics [N,3], depths [N], radii [N,2] (int32; opacity-aware, see
    :mod:`splatpack.render.projection`)."""
    n = means.shape[0]
    W = viewmat[:3, :3].astype(np.float64)
    t = viewmat[:3, 3].astype(np.float64)
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    means2d = np.zeros((n, 2), np.float32)
    conics = np.zeros((n, 3), np.float32)
    depths = np.zeros(n, np.float32)
    radii = np.zeros((n, 2), np.int32)
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        Rq, M, S, Sc, tmp = np.empty((3, 3)), np.empty((3, 3)), np.empty((3, 3)), np.empty((3, 3)), np.empty((3, 3))
        J, JS, C2 = np.empty((2, 3)), np.empty((2, 3)), np.empty((2, 2))
        for g in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            px, py, pz, tz, ux, uy, clip_x, clip_y, qw, qx, qy, qz, qn = _camera_terms(
                means, quats, scales, g, W, t, fx, fy, cx, cy, width, height, Rq, M, S, Sc, J, tmp
            )
            _mm(J, Sc, JS)
            _mm(JS, J.T, C2)
            A, B, D = C2[0, 0] + eps2d, 0.5 * (C2[0, 1] + C2[1, 0]), C2[1, 1] + eps2d
            det = max(A * D - B * B, 1e-10)
            mx, my = fx * px / tz + cx, fy * py / tz + cy
            means2d[g, 0], means2d[g, 1] = mx, my
            conics[g, 0], conics[g, 1], conics[g, 2] = D / det, -B / det, A / det
            depths[g] = pz
            op = opacities[g]
            if not (pz > near and pz < far and op >= ALPHA_MIN and A * D - B * B > 0):
                continue
            ext = math.sqrt(2.0 * math.log(max(op * 255.0, 1.0)))
            rx, ry = math.ceil(ext * math.sqrt(A)), math.ceil(ext * math.sqrt(D))
            if mx + rx > 0 and mx - rx < width and my + ry > 0 and my - ry < height and rx > 0 and ry > 0:
                radii[g, 0], radii[g, 1] = rx, ry
    return means2d, conics, depths, radii


@njit(parallel=True, **_opts)
def project_backward(means, quats, scales, viewmat, K, width, height, eps2d, radii, v_means2d, v_conics, v_depths):
    """→ v_means [N,3], v_quats [N,4], v_scales [N,3] (w.r.t. the linear scales)."""
    n = means.shape[0]
    W = viewmat[:3, :3].astype(np.float64)
    t = viewmat[:3, 3].astype(np.float64)
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    v_means = np.zeros((n, 3), np.float32)
    v_quats = np.zeros((n, 4), np.float32)
    v_scales = np.zeros((n, 3), np.float32)
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        Rq, M, S, Sc, tmp = np.empty((3, 3)), np.empty((3, 3)), np.empty((3, 3)), np.empty((3, 3)), np.empty((3, 3))
        V_Sc, V_S, V_M, R = np.empty((3, 3)), np.empty((3, 3)), np.empty((3, 3)), np.empty((3, 3))
        J, JS, C2 = np.empty((2, 3)), np.empty((2, 3)), np.empty((2, 2))
        V2, T22, T23, V_J = np.empty((2, 2)), np.empty((2, 2)), np.empty((2, 3)), np.empty((2, 3))
        for g in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            if radii[g, 0] <= 0 or radii[g, 1] <= 0:
                continue
            px, py, pz, tz, ux, uy, clip_x, clip_y, w, x, y, z, qn = _camera_terms(
                means, quats, scales, g, W, t, fx, fy, cx, cy, width, height, Rq, M, S, Sc, J, tmp
            )
            _mm(J, Sc, JS)
            _mm(JS, J.T, C2)
            A, B, D = C2[0, 0] + eps2d, 0.5 * (C2[0, 1] + C2[1, 0]), C2[1, 1] + eps2d
            det = max(A * D - B * B, 1e-10)
            ia, ib, ic = D / det, -B / det, A / det  # Σ'⁻¹ = [[ia, ib], [ib, ic]]
            ga, gb, gc = v_conics[g, 0], 0.5 * v_conics[g, 1], v_conics[g, 2]
            # V2 = −Σ'⁻¹ G Σ'⁻¹
            T22[0, 0], T22[0, 1] = ia * ga + ib * gb, ia * gb + ib * gc
            T22[1, 0], T22[1, 1] = ib * ga + ic * gb, ib * gb + ic * gc
            V2[0, 0] = -(T22[0, 0] * ia + T22[0, 1] * ib)
            V2[0, 1] = -(T22[0, 0] * ib + T22[0, 1] * ic)
            V2[1, 0] = -(T22[1, 0] * ia + T22[1, 1] * ib)
            V2[1, 1] = -(T22[1, 0] * ib + T22[1, 1] * ic)
            # V_Sc = Jᵀ V2 J ; V_J = 2 V2 J Sc
            _mm(V2, J, T23)
            _mm(J.T, T23, V_Sc)
            _mm(T23, Sc, V_J)
            vm2x, vm2y = v_means2d[g, 0], v_means2d[g, 1]
            tz2 = tz * tz
            vtx = fx / tz * vm2x
            vty = fy / tz * vm2y
            vtz = -(fx * px * vm2x + fy * py * vm2y) / tz2 + v_depths[g]
            vtz += 2.0 * (-fx / tz2 * V_J[0, 0] - fy / tz2 * V_J[1, 1])
            if clip_x:
                vtz += 2.0 * fx * ux / tz2 * V_J[0, 2]
            else:
                vtx += -2.0 * fx / tz2 * V_J[0, 2]
                vtz += 4.0 * fx * ux / tz2 * V_J[0, 2]
            if clip_y:
                vtz += 2.0 * fy * uy / tz2 * V_J[1, 2]
            else:
                vty += -2.0 * fy / tz2 * V_J[1, 2]
                vtz += 4.0 * fy * uy / tz2 * V_J[1, 2]
            for i in range(3):
                v_means[g, i] = W[0, i] * vtx + W[1, i] * vty + W[2, i] * vtz
            # V_S = Wᵀ V_Sc W ; V_M = 2 V_S M
            _mm(W.T, V_Sc, tmp)
            _mm(tmp, W, V_S)
            _mm(V_S, M, V_M)
            for j in range(3):
                v_scales[g, j] = 2.0 * (Rq[0, j] * V_M[0, j] + Rq[1, j] * V_M[1, j] + Rq[2, j] * V_M[2, j])
            for i in range(3):
                for j in range(3):
                    R[i, j] = 2.0 * V_M[i, j] * scales[g, j]
            vw = 2.0 * (-z * R[0, 1] + y * R[0, 2] + z * R[1, 0] - x * R[1, 2] - y * R[2, 0] + x * R[2, 1])
            vx = 2.0 * (
                y * R[0, 1]
                + z * R[0, 2]
                + y * R[1, 0]
                - 2 * x * R[1, 1]
                - w * R[1, 2]
                + z * R[2, 0]
                + w * R[2, 1]
                - 2 * x * R[2, 2]
            )
            vy = 2.0 * (
                -2 * y * R[0, 0]
                + x * R[0, 1]
                + w * R[0, 2]
                + x * R[1, 0]
                + z * R[1, 2]
                - w * R[2, 0]
                + z * R[2, 1]
                - 2 * y * R[2, 2]
            )
            vz = 2.0 * (
                -2 * z * R[0, 0]
                - w * R[0, 1]
                + x * R[0, 2]
                + w * R[1, 0]
                - 2 * z * R[1, 1]
                + y * R[1, 2]
                + x * R[2, 0]
                + y * R[2, 1]
            )
            dot = w * vw + x * vx + y * vy + z * vz
            v_quats[g, 0] = (vw - w * dot) / qn
            v_quats[g, 1] = (vx - x * dot) / qn
            v_quats[g, 2] = (vy - y * dot) / qn
            v_quats[g, 3] = (vz - z * dot) / qn
    return v_means, v_quats, v_scales


@njit(inline="always")
def _sh_bases(degree, x, y, z, out, dout):
    """Fill out[k] = Y_k(x,y,z) and dout[k] = ∇Y_k for k < (degree+1)²."""
    out[0] = SH_C0
    dout[0, :] = 0.0
    if degree < 1:
        return
    out[1], out[2], out[3] = -SH_C1 * y, SH_C1 * z, -SH_C1 * x
    dout[1, 0], dout[1, 1], dout[1, 2] = 0.0, -SH_C1, 0.0
    dout[2, 0], dout[2, 1], dout[2, 2] = 0.0, 0.0, SH_C1
    dout[3, 0], dout[3, 1], dout[3, 2] = -SH_C1, 0.0, 0.0
    if degree < 2:
        return
    xx, yy, zz = x * x, y * y, z * z
    out[4] = SH_C2[0] * x * y
    out[5] = SH_C2[1] * y * z
    out[6] = SH_C2[2] * (2 * zz - xx - yy)
    out[7] = SH_C2[3] * x * z
    out[8] = SH_C2[4] * (xx - yy)
    dout[4, 0], dout[4, 1], dout[4, 2] = SH_C2[0] * y, SH_C2[0] * x, 0.0
    dout[5, 0], dout[5, 1], dout[5, 2] = 0.0, SH_C2[1] * z, SH_C2[1] * y
    dout[6, 0], dout[6, 1], dout[6, 2] = -2 * SH_C2[2] * x, -2 * SH_C2[2] * y, 4 * SH_C2[2] * z
    dout[7, 0], dout[7, 1], dout[7, 2] = SH_C2[3] * z, 0.0, SH_C2[3] * x
    dout[8, 0], dout[8, 1], dout[8, 2] = 2 * SH_C2[4] * x, -2 * SH_C2[4] * y, 0.0
    if degree < 3:
        return
    out[9] = SH_C3[0] * y * (3 * xx - yy)
    out[10] = SH_C3[1] * x * y * z
    out[11] = SH_C3[2] * y * (4 * zz - xx - yy)
    out[12] = SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy)
    out[13] = SH_C3[4] * x * (4 * zz - xx - yy)
    out[14] = SH_C3[5] * z * (xx - yy)
    out[15] = SH_C3[6] * x * (xx - 3 * yy)
    dout[9, 0], dout[9, 1], dout[9, 2] = 6 * SH_C3[0] * x * y, SH_C3[0] * (3 * xx - 3 * yy), 0.0
    dout[10, 0], dout[10, 1], dout[10, 2] = SH_C3[1] * y * z, SH_C3[1] * x * z, SH_C3[1] * x * y
    dout[11, 0], dout[11, 1], dout[11, 2] = (
        -2 * SH_C3[2] * x * y,
        SH_C3[2] * (4 * zz - xx - 3 * yy),
        8 * SH_C3[2] * y * z,
    )
    dout[12, 0], dout[12, 1], dout[12, 2] = (
        -6 * SH_C3[3] * x * z,
        -6 * SH_C3[3] * y * z,
        SH_C3[3] * (6 * zz - 3 * xx - 3 * yy),
    )
    dout[13, 0], dout[13, 1], dout[13, 2] = (
        SH_C3[4] * (4 * zz - 3 * xx - yy),
        -2 * SH_C3[4] * x * y,
        8 * SH_C3[4] * x * z,
    )
    dout[14, 0], dout[14, 1], dout[14, 2] = 2 * SH_C3[5] * x * z, -2 * SH_C3[5] * y * z, SH_C3[5] * (xx - yy)
    dout[15, 0], dout[15, 1], dout[15, 2] = SH_C3[6] * (3 * xx - 3 * yy), -6 * SH_C3[6] * x * y, 0.0


@njit(inline="always")
def _view_dir(means, campos, g):
    """Unit direction from the camera to Gaussian g, and the distance."""
    dx, dy, dz = means[g, 0] - campos[0], means[g, 1] - campos[1], means[g, 2] - campos[2]
    r = math.sqrt(dx * dx + dy * dy + dz * dz) + 1e-30
    return dx / r, dy / r, dz / r, r


@njit(parallel=True, **_opts)
def sh_forward(degree, coeffs, means, campos, radii):
    """colors [N,3] = max(Σ_k c_k Y_k(d̂) + 0.5, 0), d = mean − campos; zero where radii = 0."""
    n = coeffs.shape[0]
    nb = (degree + 1) ** 2
    colors = np.zeros((n, 3), np.float32)
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        Y = np.empty(16)
        dY = np.empty((16, 3))
        for g in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            if radii[g, 0] <= 0 or radii[g, 1] <= 0:
                continue
            x, y, z, r = _view_dir(means, campos, g)
            _sh_bases(degree, x, y, z, Y, dY)
            for ch in range(3):
                s = 0.5
                for k in range(nb):
                    s += Y[k] * coeffs[g, k, ch]
                colors[g, ch] = max(s, 0.0)
    return colors


@njit(parallel=True, **_opts)
def sh_backward(degree, coeffs, means, campos, radii, colors, v_colors):
    """→ v_coeffs [N,K,3] and v_means [N,3] (through the view direction)."""
    n, kk = coeffs.shape[0], coeffs.shape[1]
    nb = (degree + 1) ** 2
    v_coeffs = np.zeros((n, kk, 3), np.float32)
    v_means = np.zeros((n, 3), np.float32)
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        Y = np.empty(16)
        dY = np.empty((16, 3))
        for g in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            if radii[g, 0] <= 0 or radii[g, 1] <= 0:
                continue
            x, y, z, r = _view_dir(means, campos, g)
            _sh_bases(degree, x, y, z, Y, dY)
            vdx, vdy, vdz = 0.0, 0.0, 0.0
            for ch in range(3):
                if colors[g, ch] <= 0.0:
                    continue
                vc = v_colors[g, ch]
                for k in range(nb):
                    v_coeffs[g, k, ch] = Y[k] * vc
                    cv = coeffs[g, k, ch] * vc
                    vdx += dY[k, 0] * cv
                    vdy += dY[k, 1] * cv
                    vdz += dY[k, 2] * cv
            dot = vdx * x + vdy * y + vdz * z
            v_means[g, 0] = (vdx - x * dot) / r
            v_means[g, 1] = (vdy - y * dot) / r
            v_means[g, 2] = (vdz - z * dot) / r
    return v_coeffs, v_means
