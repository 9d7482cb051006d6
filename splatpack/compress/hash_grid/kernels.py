"""numba CPU kernels of the hash encoding: forward and hand-written backward (tcnn's ``kernel_grid``).

Müller et al., "Instant Neural Graphics Primitives", SIGGRAPH 2022, §3–4. Like tiny-cuda-nn's
kernels, each task handles one level: a level's table stays in cache while it is read, which
matters once the tables together (tens of MB at 2^19) exceed the last-level cache. Gathers of
hashed levels are software-prefetched a few points ahead. The accumulation emulates CUDA's fused
multiply-adds (:func:`_fma32`), so the features agree with tinycudann to float32 rounding. The
backward scatters with the same level split: levels own disjoint slices of the table, so there
are no write races, no atomics, and the result is deterministic.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from splatpack.compress.hash_grid.config import PRIME_X, PRIME_Y, PRIME_Z, U32

__all__ = ["grid_kernels"]

_PREFETCH_DISTANCE = 8  # points ahead; hides the DRAM latency of the fine (hashed) levels
_PREFETCH_NAME = "llvm.prefetch.p0" if llvm.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"


def _make_prefetch(rw: int):
    @intrinsic
    def prefetch(typingctx, arr, idx):
        """``__builtin_prefetch(&arr[idx], rw, 3)``: a hint, never a fault (LLVM semantics)."""
        sig = types.void(arr, idx)

        def codegen(context, builder, signature, args):
            arr_ty = signature.args[0]
            ary = context.make_array(arr_ty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, arr_ty, ary, [args[1]], wraparound=False)
            i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH_NAME)
            builder.call(fn, [i8p, ir.Constant(i32, rw), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return sig, codegen

    return prefetch


_prefetch_read = _make_prefetch(0)
_prefetch_write = _make_prefetch(1)


@numba.njit(inline="always")
def _fma32(a, b, c):
    # fmaf(a, b, c) for float32 a, b, c: the float64 product of two float32s is exact, so the
    # sum is rounded (almost always) once, like the GPU's fused multiply-add.
    return np.float32(np.float64(a) * np.float64(b) + np.float64(c))


@numba.njit(inline="always")
def _axis(xv, scale, stride):
    """One axis of a corner index: ``p = fl32(x·s + ½)`` → (⌊p⌋·stride, (⌊p⌋+1)·stride) mod 2³², p − ⌊p⌋."""
    p = np.float32(np.float64(xv) * scale + 0.5)
    c = np.floor(p)
    g = np.int64(c)  # == (uint32)(int)floorf(p) modulo 2³² after the masks below
    return (g * stride) & U32, ((g + 1) * stride) & U32, p - c


@numba.njit(inline="always")
def _entry(ax, ay, az, dense, size, mask):
    """Table entry of a corner from its per-axis terms (linear sum or coherent-prime XOR)."""
    if dense:
        e = (ax + ay + az) & U32
        if e >= size:  # wrap-around of the ½-offset corner at x ≈ 1 (rare)
            e = e % size
        return e
    return (ax ^ ay ^ az) & mask  # hashed levels have 2^k entries


@numba.njit(inline="always")
def _level_consts(lvl, lv_offset, lv_size, lv_res, lv_scale, lv_dense, n_feat):
    res = lv_res[lvl]
    size = lv_size[lvl]
    dense = lv_dense[lvl]
    if dense:
        sx, sy, sz = np.int64(1), res, res * res
    else:
        sx, sy, sz = np.int64(PRIME_X), np.int64(PRIME_Y), np.int64(PRIME_Z)
    return np.float64(lv_scale[lvl]), size, size - 1, dense, lv_offset[lvl] * n_feat, sx, sy, sz


@numba.njit(inline="always")
def _prefetch_point(x, k, table, base, n_feat, scale, sx, sy, sz, dense, size, mask, write):
    """Prefetch the 4 cache lines (x-neighbours share one) that point ``k`` will touch."""
    ax0, _, _ = _axis(x[k, 0], scale, sx)
    ay0, ay1, _ = _axis(x[k, 1], scale, sy)
    az0, az1, _ = _axis(x[k, 2], scale, sz)
    e00 = base + _entry(ax0, ay0, az0, dense, size, mask) * n_feat
    e10 = base + _entry(ax0, ay1, az0, dense, size, mask) * n_feat
    e01 = base + _entry(ax0, ay0, az1, dense, size, mask) * n_feat
    e11 = base + _entry(ax0, ay1, az1, dense, size, mask) * n_feat
    if write:
        _prefetch_write(table, e00)
        _prefetch_write(table, e10)
        _prefetch_write(table, e01)
        _prefetch_write(table, e11)
    else:
        _prefetch_read(table, e00)
        _prefetch_read(table, e10)
        _prefetch_read(table, e01)
        _prefetch_read(table, e11)


@functools.cache
def grid_kernels(n_feat: int):
    """Forward/backward kernels specialised for ``F = n_feat`` (a compile-time constant, so the
    feature loops unroll and up to 8 accumulators live in registers)."""
    if n_feat not in (1, 2, 4, 8):
        raise ValueError("n_features_per_level must be 1, 2, 4 or 8")
    F = n_feat

    @numba.njit(parallel=True, fastmath=False, cache=True)
    def forward(x, params, lv_offset, lv_size, lv_res, lv_scale, lv_dense, level_order, n_blocks, out):
        """out[i, l·F + f] = Σ_corners w · table_l[h(corner)][f]  (tcnn ``kernel_grid``).

        Tasks are levels × ``n_blocks`` blocks of points, level-major: one level at a time per
        worker, like tcnn (see the module docstring)."""
        n = x.shape[0]
        block = (n + n_blocks - 1) // n_blocks
        one = np.float32(1.0)
        zero = np.float32(0.0)
        for task in numba.prange(level_order.shape[0] * n_blocks):
            lvl = level_order[task // n_blocks]
            i0 = (task % n_blocks) * block
            i1 = min(i0 + block, n)
            scale, size, mask, dense, base, sx, sy, sz = _level_consts(
                lvl, lv_offset, lv_size, lv_res, lv_scale, lv_dense, F
            )
            col = lvl * F
            pf_end = i1 - _PREFETCH_DISTANCE if not dense else i0  # dense tables are small: no hints
            for i in range(i0, i1):
                if i < pf_end:
                    _prefetch_point(
                        x, i + _PREFETCH_DISTANCE, params, base, F, scale, sx, sy, sz, dense, size, mask, False
                    )
                ax0, ax1, tx = _axis(x[i, 0], scale, sx)
                ay0, ay1, ty = _axis(x[i, 1], scale, sy)
                az0, az1, tz = _axis(x[i, 2], scale, sz)
                a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
                for cz in range(2):  # corner index cx + 2·cy + 4·cz ascending, as tcnn sums
                    az = az1 if cz else az0
                    wz = tz if cz else one - tz
                    for cy in range(2):
                        ay = ay1 if cy else ay0
                        wy = ty if cy else one - ty
                        for cx in range(2):
                            ax = ax1 if cx else ax0
                            wx = tx if cx else one - tx
                            w = (wx * wy) * wz  # float32, dims in order like tcnn
                            p = base + _entry(ax, ay, az, dense, size, mask) * F
                            a0 = _fma32(w, params[p], a0)
                            if F > 1:
                                a1 = _fma32(w, params[p + 1], a1)
                            if F > 2:
                                a2 = _fma32(w, params[p + 2], a2)
                                a3 = _fma32(w, params[p + 3], a3)
                            if F > 4:
                                a4 = _fma32(w, params[p + 4], a4)
                                a5 = _fma32(w, params[p + 5], a5)
                                a6 = _fma32(w, params[p + 6], a6)
                                a7 = _fma32(w, params[p + 7], a7)
                out[i, col] = a0
                if F > 1:
                    out[i, col + 1] = a1
                if F > 2:
                    out[i, col + 2] = a2
                    out[i, col + 3] = a3
                if F > 4:
                    out[i, col + 4] = a4
                    out[i, col + 5] = a5
                    out[i, col + 6] = a6
                    out[i, col + 7] = a7

    @numba.njit(parallel=True, fastmath=False, cache=True)
    def backward(x, grad_out, lv_offset, lv_size, lv_res, lv_scale, lv_dense, level_order, grad):
        """grad[h(corner)·F + f] += w · dL/dy[i, l·F + f]  (tcnn ``kernel_grid_backward``).

        One task per level: levels own disjoint slices of ``grad``, so the scatter is race-free.
        ``level_order`` deals coarse (cheap, cached) and fine (cache-missing) levels evenly over
        the threads' contiguous static blocks of the prange. The level's slice is zeroed here."""
        n = x.shape[0]
        one = np.float32(1.0)
        for k in numba.prange(level_order.shape[0]):
            lvl = level_order[k]
            scale, size, mask, dense, base, sx, sy, sz = _level_consts(
                lvl, lv_offset, lv_size, lv_res, lv_scale, lv_dense, F
            )
            col = lvl * F
            for j in range(base, base + size * F):
                grad[j] = np.float32(0.0)
            pf_end = n - _PREFETCH_DISTANCE if not dense else 0
            for i in range(n):
                if i < pf_end:
                    _prefetch_point(
                        x, i + _PREFETCH_DISTANCE, grad, base, F, scale, sx, sy, sz, dense, size, mask, True
                    )
                ax0, ax1, tx = _axis(x[i, 0], scale, sx)
                ay0, ay1, ty = _axis(x[i, 1], scale, sy)
                az0, az1, tz = _axis(x[i, 2], scale, sz)
                for cz in range(2):
                    az = az1 if cz else az0
                    wz = tz if cz else one - tz
                    for cy in range(2):
                        ay = ay1 if cy else ay0
                        wy = ty if cy else one - ty
                        for cx in range(2):
                            ax = ax1 if cx else ax0
                            wx = tx if cx else one - tx
                            w = (wx * wy) * wz
                            p = base + _entry(ax, ay, az, dense, size, mask) * F
                            for f in range(F):
                                grad[p + f] += w * grad_out[i, col + f]

    return forward, backward
