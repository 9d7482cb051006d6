"""Compiled CPU kernels for tile-based Gaussian compositing (forward and backward).

These follow the CUDA rasterizer of 3DGS (Kerbl et al. 2023) and gsplat step for step:

* Gaussians are binned into 16×16 pixel tiles by their screen-space bounding box and sorted
  front to back per tile (stable sort on camera depth).
* Per pixel, front to back: σ = ½(a·dx² + c·dy²) + b·dx·dy, α = min(0.999, o·e^{−σ}) (gsplat's clamp; INRIA's code uses 0.99);
  Gaussians with σ < 0 or α < 1/255 are skipped; the pixel stops *before* the Gaussian that
  would bring its transmittance T to ≤ 1e-4. C = Σ_i c_i α_i T_i + T_final·bg (eq. 3 of 3DGS).
* The backward pass walks each pixel's list back to front from its last contributor,
  recovering T_i = T_{i+1}/(1 − α_i), with
  ∂C/∂α_i = c_i T_i − B_i/(1 − α_i) (B_i: colour composited behind i, background included),
  ∂C/∂c_i = α_i T_i, ∂(1 − T_final)/∂α_i = T_final/(1 − α_i).

Why numba: gsplat's compositing is CUDA-only, and a dense torch version costs ~10 s per
iteration for 2k Gaussians at 128². numba compiles these loops to native code with
``prange`` spreading tiles over all cores, needs no C++ toolchain at install time (a torch C++
extension would need a compiler and ~1 min of build on first use), and caches the machine code
on disk. On CPU the natural loop order differs from CUDA's: per tile, Gaussians are the outer
loop and only the pixels inside each Gaussian's (exact, opacity-aware) bounding box are
visited, so small splats cost a few pixels rather than the whole tile.

Gradients are written per *intersection* (tile, Gaussian) and summed per Gaussian in a serial
pass afterwards: no atomics, no races, and bit-identical results run to run.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

TILE_SIZE = 16
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999  # gsplat 1.5.3's clamp (the INRIA code uses 0.99); matching it keeps CPU = CUDA
T_MIN = 1e-4

_opts = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


@njit(parallel=True, **_opts)
def isect_tiles(means2d, radii, depths, tile_size, tiles_w, tiles_h):
    """Bin Gaussians into tiles and sort each tile's list by depth.

    Returns ``tile_offsets`` [tiles_h·tiles_w + 1] and ``flat_ids`` [M]: the Gaussians of tile
    t, front to back, are ``flat_ids[tile_offsets[t]:tile_offsets[t + 1]]``.
    """
    n = means2d.shape[0]
    n_tiles = tiles_w * tiles_h
    rect = np.zeros((n, 4), dtype=np.int32)
    for g in prange(n):
        rx, ry = radii[g, 0], radii[g, 1]
        if rx <= 0 or ry <= 0:
            continue
        mx, my = means2d[g, 0], means2d[g, 1]
        x0 = min(max(int(math.floor((mx - rx) / tile_size)), 0), tiles_w)
        x1 = min(max(int(math.ceil((mx + rx) / tile_size)), 0), tiles_w)
        y0 = min(max(int(math.floor((my - ry) / tile_size)), 0), tiles_h)
        y1 = min(max(int(math.ceil((my + ry) / tile_size)), 0), tiles_h)
        rect[g, 0], rect[g, 1], rect[g, 2], rect[g, 3] = x0, x1, y0, y1
    counts = np.zeros(n_tiles + 1, dtype=np.int64)
    for g in range(n):
        for ty in range(rect[g, 2], rect[g, 3]):
            for tx in range(rect[g, 0], rect[g, 1]):
                counts[ty * tiles_w + tx + 1] += 1
    offsets = np.cumsum(counts)
    cursor = offsets[:-1].copy()
    flat = np.empty(offsets[-1], dtype=np.int32)
    for g in range(n):
        for ty in range(rect[g, 2], rect[g, 3]):
            for tx in range(rect[g, 0], rect[g, 1]):
                t = ty * tiles_w + tx
                flat[cursor[t]] = g
                cursor[t] += 1
    for t in prange(n_tiles):
        s, e = offsets[t], offsets[t + 1]
        if e - s > 1:
            ids = flat[s:e].copy()
            order = np.argsort(depths[ids], kind="mergesort")
            for i in range(e - s):
                flat[s + i] = ids[order[i]]
    return offsets, flat


_simd = dict(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract", "arcp"})
SIGMA_CLAMP = 8.0
NCH = 3  # channels per kernel call: a compile-time constant so the channel loop unrolls and
# the pixel loop (innermost) vectorises; wider colours are processed in groups of NCH  # exp(−8) · 1 < 1/255, so larger σ are skipped anyway


@njit(inline="always", **{k: v for k, v in _simd.items() if k != "cache"})
def fast_exp_neg(s):
    """e^{−s} for s ∈ [0, 8], branch-free so loops over pixels vectorise.

    e^{−s} = (e^{−s/16})¹⁶ with a degree-7 Taylor polynomial on [0, 0.5] (truncation 1e-7
    relative, ≈2e-6 after the four squarings). Used identically by forward and backward.
    """
    t = np.float32(-0.0625) * min(max(s, np.float32(0.0)), np.float32(SIGMA_CLAMP))
    p = np.float32(1.0 / 5040.0)
    p = p * t + np.float32(1.0 / 720.0)
    p = p * t + np.float32(1.0 / 120.0)
    p = p * t + np.float32(1.0 / 24.0)
    p = p * t + np.float32(1.0 / 6.0)
    p = p * t + np.float32(0.5)
    p = p * t + np.float32(1.0)
    p = p * t + np.float32(1.0)
    p = p * p
    p = p * p
    p = p * p
    return p * p


@njit(inline="always")
def _bbox(mx, my, rx, ry, tx0, ty0, tw, th):
    """Pixel rows/cols of the tile inside a Gaussian's (exact) bounding box, tile-local."""
    x0 = max(int(math.floor(mx - rx - 0.5)), tx0) - tx0
    x1 = min(int(math.ceil(mx + rx + 0.5)), tx0 + tw) - tx0
    y0 = max(int(math.floor(my - ry - 0.5)), ty0) - ty0
    y1 = min(int(math.ceil(my + ry + 0.5)), ty0 + th) - ty0
    return x0, x1, y0, y1


# columns of the packed per-intersection parameter array
P_MX, P_MY, P_A, P_B, P_C, P_OP, P_RX, P_RY, P_COL = 0, 1, 2, 3, 4, 5, 6, 7, 8
P_WIDTH = P_COL + NCH


@njit(parallel=True, cache=True, nogil=True)
def gather_intersections(means2d, conics, colors, opacities, radii, flat_ids):
    """Pack each intersection's Gaussian (mean, conic, opacity, NCH colours, radii) into one
    row [M, 8 + NCH], in tile/depth order: the compositing loops then read memory sequentially
    instead of gathering from five arrays at random."""
    m = flat_ids.shape[0]
    out = np.empty((m, P_WIDTH), np.float32)
    for k in prange(m):
        g = flat_ids[k]
        out[k, P_MX], out[k, P_MY] = means2d[g, 0], means2d[g, 1]
        out[k, P_A], out[k, P_B], out[k, P_C] = conics[g, 0], conics[g, 1], conics[g, 2]
        out[k, P_OP] = opacities[g]
        for ch in range(NCH):
            out[k, P_COL + ch] = colors[g, ch]
        out[k, P_RX], out[k, P_RY] = radii[g, 0], radii[g, 1]
    return out


@njit(inline="always")
def _row_span(ha, bdy, cdy, sig_max, mx, tx0, x0, x1):
    """Tile-local pixel columns [xs, xe) of one row where σ = ha·dx² + bdy·dx + cdy can be
    ≤ ``sig_max`` (the quadratic's roots, widened by a pixel each side; the loop still tests σ
    exactly). Rotated, elongated splats cover a small part of their bounding box."""
    disc = float(bdy) * bdy - 4.0 * float(ha) * (float(cdy) - sig_max)
    if disc < 0.0 or ha <= 0.0:
        return x0, x0
    r = math.sqrt(disc)
    lo = (-float(bdy) - r) / (2.0 * ha) + mx - tx0 - 0.5
    hi = (-float(bdy) + r) / (2.0 * ha) + mx - tx0 - 0.5
    return max(x0, int(math.ceil(lo)) - 1), min(x1, int(math.floor(hi)) + 2)


@njit(parallel=True, **_simd)
def rasterize_forward(packed, background, tile_offsets, width, height, tile_size):
    """Front-to-back alpha compositing of the packed intersections.

    Returns ``image`` [H, W, NCH], ``T_final`` [H, W] (1 − alpha) and ``last`` [H, W], the
    intersection index of each pixel's last contributing Gaussian (−1 for none). Cheap tests
    come first — dead pixel, σ outside [0, ln(255·o)] — so most skipped evaluations cost a few
    instructions and no exp; rows and tiles whose pixels have all stopped are skipped.
    """
    tiles_w = (width + tile_size - 1) // tile_size
    tiles_h = (height + tile_size - 1) // tile_size
    image = np.empty((height, width, NCH), dtype=np.float32)
    T_final = np.empty((height, width), dtype=np.float32)
    last = np.empty((height, width), dtype=np.int32)
    one, zero, half = np.float32(1.0), np.float32(0.0), np.float32(0.5)
    for t in prange(tiles_w * tiles_h):
        tx0 = (t % tiles_w) * tile_size
        ty0 = (t // tiles_w) * tile_size
        tw = min(tile_size, width - tx0)
        th = min(tile_size, height - ty0)
        npx = tw * th
        T = np.ones(npx, dtype=np.float32)
        acc = np.zeros((npx, NCH), dtype=np.float32)
        lst = np.full(npx, -1, dtype=np.int32)
        live = np.ones(npx, dtype=np.bool_)
        row_live = np.full(th, tw, dtype=np.int32)
        n_live = npx
        for k in range(tile_offsets[t], tile_offsets[t + 1]):
            if n_live == 0:
                break
            mx, my, op = packed[k, P_MX], packed[k, P_MY], packed[k, P_OP]
            ha, b, hc = half * packed[k, P_A], packed[k, P_B], half * packed[k, P_C]
            sig_max = np.float32(math.log(255.0 * op))
            x0, x1, y0, y1 = _bbox(mx, my, packed[k, P_RX], packed[k, P_RY], tx0, ty0, tw, th)
            for py in range(y0, y1):
                if row_live[py] == 0:
                    continue
                dy = np.float32(ty0 + py + 0.5) - my
                cdy = hc * dy * dy
                bdy = b * dy
                base = py * tw
                xs, xe = _row_span(ha, bdy, cdy, sig_max, mx, tx0, x0, x1)
                for px in range(xs, xe):
                    p = base + px
                    if not live[p]:
                        continue
                    dx = np.float32(tx0 + px + 0.5) - mx
                    sigma = ha * dx * dx + cdy + bdy * dx
                    if sigma < zero or sigma > sig_max:
                        continue
                    alpha = min(np.float32(ALPHA_MAX), op * fast_exp_neg(sigma))
                    if alpha < np.float32(ALPHA_MIN):
                        continue
                    Tp = T[p]
                    nT = Tp * (one - alpha)
                    if nT <= np.float32(T_MIN):  # stop before this Gaussian
                        live[p] = False
                        row_live[py] -= 1
                        n_live -= 1
                        continue
                    w = alpha * Tp
                    for ch in range(NCH):
                        acc[p, ch] += packed[k, P_COL + ch] * w
                    T[p] = nT
                    lst[p] = k
        for py in range(th):
            for px in range(tw):
                p = py * tw + px
                for ch in range(NCH):
                    image[ty0 + py, tx0 + px, ch] = acc[p, ch] + T[p] * background[ch]
                T_final[ty0 + py, tx0 + px] = T[p]
                last[ty0 + py, tx0 + px] = lst[p]
    return image, T_final, last


@njit(parallel=True, **_simd)
def rasterize_backward(packed, background, tile_offsets, width, height, tile_size, T_final, last, v_image, v_alpha):
    """Per-intersection gradients [M, 6 + NCH] — (v_mx, v_my, v_a, v_b, v_c, v_opacity,
    v_colours…) — of a loss given its gradients w.r.t. the image [H,W,NCH] and alpha [H,W].
    Each pixel is walked back to front from its last contributor (see the module docstring);
    :func:`sum_per_gaussian` reduces the rows to Gaussians."""
    tiles_w = (width + tile_size - 1) // tile_size
    tiles_h = (height + tile_size - 1) // tile_size
    g_isect = np.zeros((packed.shape[0], 6 + NCH), dtype=np.float32)
    one, zero, half = np.float32(1.0), np.float32(0.0), np.float32(0.5)
    for t in prange(tiles_w * tiles_h):
        s = tile_offsets[t]
        tx0 = (t % tiles_w) * tile_size
        ty0 = (t // tiles_w) * tile_size
        tw = min(tile_size, width - tx0)
        th = min(tile_size, height - ty0)
        npx = tw * th
        T = np.empty(npx, dtype=np.float32)
        Tf = np.empty(npx, dtype=np.float32)
        vA = np.empty(npx, dtype=np.float32)
        lst = np.empty(npx, dtype=np.int32)
        behind = np.empty((npx, NCH), dtype=np.float32)
        vimg = np.empty((npx, NCH), dtype=np.float32)
        k_end = s - 1
        for py in range(th):
            for px in range(tw):
                p = py * tw + px
                tf = T_final[ty0 + py, tx0 + px]
                T[p] = tf
                Tf[p] = tf
                vA[p] = v_alpha[ty0 + py, tx0 + px] * tf
                lst[p] = last[ty0 + py, tx0 + px]
                for ch in range(NCH):
                    behind[p, ch] = tf * background[ch]
                    vimg[p, ch] = v_image[ty0 + py, tx0 + px, ch]
                k_end = max(k_end, lst[p])
        col = np.empty(NCH, dtype=np.float32)
        gcol = np.empty(NCH, dtype=np.float32)
        for k in range(k_end, s - 1, -1):
            mx, my, op = packed[k, P_MX], packed[k, P_MY], packed[k, P_OP]
            a, b, c = packed[k, P_A], packed[k, P_B], packed[k, P_C]
            sig_max = np.float32(math.log(255.0 * op))
            for ch in range(NCH):
                col[ch] = packed[k, P_COL + ch]
                gcol[ch] = zero
            x0, x1, y0, y1 = _bbox(mx, my, packed[k, P_RX], packed[k, P_RY], tx0, ty0, tw, th)
            gmx = zero
            gmy = zero
            ga = zero
            gb = zero
            gc = zero
            go = zero
            for py in range(y0, y1):
                dy = np.float32(ty0 + py + 0.5) - my
                cdy = half * c * dy * dy
                bdy = b * dy
                base = py * tw
                xs, xe = _row_span(half * a, bdy, cdy, sig_max, mx, tx0, x0, x1)
                for px in range(xs, xe):
                    p = base + px
                    if k > lst[p]:
                        continue
                    dx = np.float32(tx0 + px + 0.5) - mx
                    sigma = half * a * dx * dx + cdy + bdy * dx
                    if sigma < zero or sigma > sig_max:
                        continue
                    vis = fast_exp_neg(sigma)
                    alpha = min(np.float32(ALPHA_MAX), op * vis)
                    if alpha < np.float32(ALPHA_MIN):
                        continue
                    ra = one / (one - alpha)
                    Ti = T[p] * ra
                    T[p] = Ti
                    w = alpha * Ti
                    v_a = vA[p] * ra
                    for ch in range(NCH):
                        vi = vimg[p, ch]
                        v_a += vi * (col[ch] * Ti - behind[p, ch] * ra)
                        gcol[ch] += w * vi
                        behind[p, ch] += col[ch] * w
                    if op * vis <= np.float32(ALPHA_MAX):
                        go += v_a * vis
                        v_sigma = -v_a * alpha
                        ga += half * v_sigma * dx * dx
                        gb += v_sigma * dx * dy
                        gc += half * v_sigma * dy * dy
                        gmx -= v_sigma * (a * dx + b * dy)
                        gmy -= v_sigma * (b * dx + c * dy)
            g_isect[k, 0] = gmx
            g_isect[k, 1] = gmy
            g_isect[k, 2] = ga
            g_isect[k, 3] = gb
            g_isect[k, 4] = gc
            g_isect[k, 5] = go
            for ch in range(NCH):
                g_isect[k, 6 + ch] = gcol[ch]
    return g_isect


@njit(cache=True, nogil=True)
def sum_per_gaussian(g_isect, flat_ids, n):
    """Sum per-intersection rows into per-Gaussian rows [n, width] (serial: deterministic)."""
    out = np.zeros((n, g_isect.shape[1]), dtype=np.float32)
    for k in range(flat_ids.shape[0]):
        g = flat_ids[k]
        for j in range(g_isect.shape[1]):
            out[g, j] += g_isect[k, j]
    return out


def set_num_threads(n: int | None) -> None:
    """Threads used by the kernels (default: all cores)."""
    numba.set_num_threads(n or numba.config.NUMBA_NUM_THREADS)
