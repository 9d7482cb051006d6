"""Multiresolution hash encoding (Instant-NGP), bit-compatible with tiny-cuda-nn's ``HashGrid``.

Müller et al., "Instant Neural Graphics Primitives with a Multiresolution Hash Encoding",
SIGGRAPH 2022, §3. A point ``x ∈ [0, 1]³`` is encoded by ``L`` levels of ``F`` trainable
features each. Level ``l`` has the growth factor and scale (eq. 2–3 of the paper, in the form
tiny-cuda-nn implements it: "``base_resolution`` counts grid *vertices*")::

    s_l  = 2^(l · log2 b) · N_min − 1          (b = per_level_scale, N_min = base_resolution)
    R_l  = ⌈s_l⌉ + 1                           (vertices per axis)
    T_l  = min(next_multiple(R_l³, 8), 2^log2_hashmap_size)   (table entries)

and the position ``p = x · s_l + ½`` (the ½ staggers the levels, paper appendix A), cell
``⌊p⌋`` and local coordinate ``t = p − ⌊p⌋``. The 8 corners ``v = ⌊p⌋ + c, c ∈ {0,1}³`` are
mapped to table entries by (eq. 4, "coherent prime" hash, all arithmetic modulo 2³²)::

    h(v) = (v_x · R⁰ + v_y · R¹ + v_z · R²)  mod T_l          if R_l³ ≤ T_l  (dense level)
    h(v) = (v_x · 1 ⊕ v_y · 2654435761 ⊕ v_z · 805459861) mod T_l   otherwise (hashed level)

and the level's output is the trilinear interpolation ``y_l = Σ_c w_c θ_l[h(⌊p⌋ + c)]`` with
``w_c = Π_d (c_d ? t_d : 1 − t_d)``. The encoding is ``concat_l y_l`` (``[N, L·F]``).

Parameter layout (identical to ``tcnn.Encoding(...).params``): one flat float32 vector; level
``l`` owns entries ``[offset_l, offset_l + T_l)`` (``offset_l = Σ_{k<l} T_k``) and entry ``e``
stores its ``F`` features contiguously at ``params[(offset_l + e)·F : (offset_l + e + 1)·F]``.
Initialisation is ``U(−1e-4, 1e-4)``. The scales are computed in float32 as the CUDA code does
(``exp2f(l · log2f(b)) · N_min − 1``) and the position ``p`` is a float32 computed with a fused
multiply-add, so a table trained with tinycudann on a GPU decodes here to the same cells and
weights; features agree to float32 rounding (CUDA contracts the accumulation into FMAs, which
the numba kernel emulates; the torch path rounds each step separately — ≲1 ulp). One caveat:
CUDA's ``exp2f`` may be off by an ulp or two, so a level whose scale lies within a few ulp of an
integer could get a different resolution on the GPU; :func:`grid_levels` warns about such
configurations (none of the usual ones, e.g. Compact-3DGS' ``b = 1.447``, comes close). Inputs
outside ``[0, 1]`` are not clamped: like tcnn they wrap (modulo 2³² and ``T``), always in range.

Backends (``HashGridEncoding(backend=...)``):

* ``"numba"`` — CPU kernels below. tinycudann is CUDA-only and not on PyPI (it is built from
  source against a CUDA toolkit), so a CPU-first toolkit needs its own kernel; the vectorised
  torch version materialises ``[N, 8, F]`` gathers per level and an autograd scatter-add, and
  is much slower on CPU (``benchmarks/colour_field_speed.py``).
  Like tcnn's kernels, each worker processes one level at a time (tasks are levels, dealt so
  that cheap coarse and cache-missing fine levels balance over the threads): a level's table
  stays in cache while it is read, which matters once the tables together (tens of MB at 2^19)
  exceed the last-level cache. Gathers of hashed levels are software-prefetched a few points
  ahead. The backward scatters into the table with the same level split — levels own disjoint
  slices of ``params``, so there are no write races and no atomics, and it is deterministic.
* ``"torch"`` — vectorised pure torch, any device (used on CUDA when tinycudann is absent).
* ``"tcnn"`` — ``tinycudann.Encoding`` on CUDA tensors, sharing this module's ``params``.
* ``"auto"`` — tcnn on CUDA when importable, torch on other non-CPU devices, numba on CPU.

No backend gives a gradient with respect to the positions: the encoding is differentiated
with respect to its table only (the colour field of Compact-3DGS detaches the positions).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import numba
import numpy as np
import torch
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from torch import Tensor

__all__ = [
    "HashGridBackend",
    "HashGridConfig",
    "HashGridEncoding",
    "LevelInfo",
    "grid_levels",
    "hash_encode_numba",
    "hash_encode_reference",
    "hash_encode_torch",
    "tcnn_available",
]

HashGridBackend = Literal["auto", "numba", "torch", "tcnn"]

# tiny-cuda-nn's coherent-prime hash factors for the first three dimensions.
PRIME_X = 1
PRIME_Y = 2654435761
PRIME_Z = 805459861
_U32 = 0xFFFFFFFF
_INIT_RANGE = 1e-4


@dataclass
class HashGridConfig:
    """The ``{"otype": "HashGrid", ...}`` configuration of tiny-cuda-nn (3-D input).

    Defaults are those of Compact-3DGS' colour field (``recolor``)."""

    n_levels: int = 16
    n_features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    per_level_scale: float = 1.447

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level

    def tcnn_config(self) -> dict[str, Any]:
        """The tinycudann encoding config with the same semantics."""
        return {
            "otype": "HashGrid",
            "n_levels": int(self.n_levels),
            "n_features_per_level": int(self.n_features_per_level),
            "log2_hashmap_size": int(self.log2_hashmap_size),
            "base_resolution": int(self.base_resolution),
            "per_level_scale": float(self.per_level_scale),
            "interpolation": "Linear",
            "hash": "CoherentPrime",
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LevelInfo(NamedTuple):
    """One level of the grid. ``offset``/``size`` count table *entries* (each ``F`` floats)."""

    offset: int
    size: int
    resolution: int
    scale: float  # s_l as the float32 value the kernels use
    dense: bool  # R³ ≤ T: linear (x-fastest) indexing; else coherent-prime hash


def _level_scale(level: int, base_resolution: int, per_level_scale: float) -> np.float32:
    """``exp2f(level · log2f(b)) · N_min − 1`` evaluated in float32 like tiny-cuda-nn."""
    log2_b = np.float32(math.log2(float(np.float32(per_level_scale))))
    t = np.float32(level) * log2_b
    growth = np.float32(2.0 ** float(t))
    return np.float32(growth * np.float32(base_resolution)) - np.float32(1.0)


def grid_levels(cfg: HashGridConfig) -> list[LevelInfo]:
    """Per-level offset, table size, resolution, scale and dense/hashed flag (tcnn's layout)."""
    if cfg.n_features_per_level not in (1, 2, 4, 8):
        raise ValueError("n_features_per_level must be 1, 2, 4 or 8 (as in tiny-cuda-nn)")
    if not 1 <= cfg.n_levels <= 32:
        raise ValueError("n_levels must be in [1, 32]")
    cap = 1 << int(cfg.log2_hashmap_size)
    max_params = _U32 // 2
    levels, offset = [], 0
    for level in range(cfg.n_levels):
        scale = _level_scale(level, cfg.base_resolution, cfg.per_level_scale)
        res = int(math.ceil(float(scale))) + 1
        dense_size = res**3 if float(res) ** 3 <= max_params else max_params
        dense_size = -(-dense_size // 8) * 8
        size = min(dense_size, cap)
        dense = res**3 <= size  # otherwise size == 2^log2_hashmap_size (the kernels mask with size − 1)
        levels.append(LevelInfo(offset, size, res, float(scale), dense))
        offset += size
        near = abs(float(scale) - round(float(scale)))
        if 0.0 < near <= 4.0 * float(np.spacing(scale)):
            warnings.warn(
                f"hash-grid level {level}: scale {float(scale)!r} is within a few ulp of an integer; "
                "a GPU's exp2f may round it to a different resolution than this CPU code",
                stacklevel=2,
            )
    return levels


def tcnn_available() -> bool:
    try:
        import tinycudann  # noqa: F401
    except Exception:  # ImportError, or a CUDA/driver error raised at import
        return False
    return True


# --------------------------------------------------------------------------------------------
# float64 reference (tests only)
# --------------------------------------------------------------------------------------------


def hash_encode_reference(params: Tensor, x: Tensor, cfg: HashGridConfig) -> Tensor:
    """Slow, explicit float64 evaluation of the encoding (python loops over levels and corners).

    ``params`` may require grad (the result is differentiable w.r.t. it). The only float32
    step is the one that defines tcnn's cell: ``p = fl32(x · s_l + ½)``; weights and sums are
    float64. Indices use numpy uint32 arithmetic, i.e. the modulo-2³² semantics of the CUDA code.
    """
    feat = cfg.n_features_per_level
    x64 = x.detach().to("cpu", torch.float64).numpy()
    p64 = params.to(torch.float64)
    outs = []
    for lv in grid_levels(cfg):
        table = p64[lv.offset * feat : (lv.offset + lv.size) * feat].reshape(lv.size, feat)
        pos = (x64 * lv.scale + 0.5).astype(np.float32).astype(np.float64)  # fma, then fl32
        cell = np.floor(pos)
        frac = pos - cell
        cell_u32 = cell.astype(np.int64).astype(np.uint32)  # two's complement wrap, as (uint32)(int)
        y = torch.zeros(x64.shape[0], feat, dtype=torch.float64)
        for cz, cy, cx in itertools.product((0, 1), repeat=3):  # corner index cx + 2cy + 4cz ascending
            corner = np.array([cx, cy, cz], dtype=np.uint32)
            v = cell_u32 + corner  # uint32 wrap
            w = np.ones(x64.shape[0])
            for d in range(3):
                w = w * (frac[:, d] if corner[d] else 1.0 - frac[:, d])
            if lv.dense:
                r = np.uint32(lv.resolution)
                idx = v[:, 0] + v[:, 1] * r + v[:, 2] * (r * r)
            else:
                idx = (v[:, 0] * np.uint32(PRIME_X)) ^ (v[:, 1] * np.uint32(PRIME_Y)) ^ (v[:, 2] * np.uint32(PRIME_Z))
            idx = (idx % np.uint32(lv.size)).astype(np.int64)
            y = y + torch.from_numpy(w)[:, None] * table[torch.from_numpy(idx)]
        outs.append(y)
    return torch.cat(outs, dim=-1)


# --------------------------------------------------------------------------------------------
# pure torch (any device)
# --------------------------------------------------------------------------------------------


def hash_encode_torch(params: Tensor, x: Tensor, cfg: HashGridConfig) -> Tensor:
    """Vectorised torch encoding, differentiable w.r.t. ``params`` (not ``x``). [N,3] → [N,L·F]."""
    feat = cfg.n_features_per_level
    x = x.detach()
    x64 = x.to(torch.float64)
    n = x.shape[0]
    dev = x.device
    one = torch.ones((), dtype=torch.float32, device=dev)
    outs = []
    for lv in grid_levels(cfg):
        table = params[lv.offset * feat : (lv.offset + lv.size) * feat].view(lv.size, feat)
        pos = (x64 * lv.scale + 0.5).to(torch.float32)  # float32 position from an FMA
        cell_f = torch.floor(pos)
        frac = pos - cell_f  # [N,3] float32, exact
        cell = cell_f.to(torch.int64)
        if lv.dense:
            stride = torch.tensor([1, lv.resolution, lv.resolution**2], dtype=torch.int64, device=dev)
        else:
            stride = torch.tensor([PRIME_X, PRIME_Y, PRIME_Z], dtype=torch.int64, device=dev)
        lo = (cell * stride) & _U32  # per-axis contribution of corner bit 0 ...
        hi = ((cell + 1) * stride) & _U32  # ... and bit 1
        wlo, whi = one - frac, frac
        idx = torch.empty(n, 8, dtype=torch.int64, device=dev)
        w = torch.empty(n, 8, dtype=torch.float32, device=dev)
        for c in range(8):
            bits = [(c >> d) & 1 for d in range(3)]
            parts = [(hi if b else lo)[:, d] for d, b in enumerate(bits)]
            if lv.dense:
                idx[:, c] = ((parts[0] + parts[1] + parts[2]) & _U32) % lv.size
            else:
                idx[:, c] = (parts[0] ^ parts[1] ^ parts[2]) % lv.size
            wd = [(whi if b else wlo)[:, d] for d, b in enumerate(bits)]
            w[:, c] = (wd[0] * wd[1]) * wd[2]
        vals = table[idx.view(-1)].view(n, 8, feat)
        outs.append((w.unsqueeze(-1) * vals).sum(dim=1))
    return torch.cat(outs, dim=-1)


# --------------------------------------------------------------------------------------------
# numba CPU kernels
# --------------------------------------------------------------------------------------------

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
    return (g * stride) & _U32, ((g + 1) * stride) & _U32, p - c


@numba.njit(inline="always")
def _entry(ax, ay, az, dense, size, mask):
    """Table entry of a corner from its per-axis terms (linear sum or coherent-prime XOR)."""
    if dense:
        e = (ax + ay + az) & _U32
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
def _grid_kernels(n_feat: int):
    """Forward/backward kernels specialised for ``F = n_feat`` (a compile-time constant, so the
    feature loops unroll and up to 8 accumulators live in registers)."""
    if n_feat not in (1, 2, 4, 8):
        raise ValueError("n_features_per_level must be 1, 2, 4 or 8")
    F = n_feat

    @numba.njit(parallel=True, fastmath=False, cache=True)
    def forward(x, params, lv_offset, lv_size, lv_res, lv_scale, lv_dense, level_order, n_blocks, out):
        """out[i, l·F + f] = Σ_corners w · table_l[h(corner)][f]  (tcnn ``kernel_grid``).

        Like tcnn, one level at a time per worker (tasks = levels × ``n_blocks`` blocks of
        points, level-major): a level's table stays in cache while it is gathered from, which
        matters once all tables together (tens of MB at 2^19) exceed the last-level cache."""
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


class _LevelArrays(NamedTuple):
    offset: np.ndarray
    size: np.ndarray
    res: np.ndarray
    scale: np.ndarray
    dense: np.ndarray


def _level_arrays(levels: list[LevelInfo]) -> _LevelArrays:
    return _LevelArrays(
        np.array([lv.offset for lv in levels], dtype=np.int64),
        np.array([lv.size for lv in levels], dtype=np.int64),
        np.array([lv.resolution for lv in levels], dtype=np.int64),
        np.array([lv.scale for lv in levels], dtype=np.float32),
        np.array([lv.dense for lv in levels], dtype=np.bool_),
    )


_SERIAL_BELOW = 1 << 18  # point×level lookups under which one thread beats waking the pool


def _numba_threads(n_points: int, n_levels: int) -> int:
    """Threads for a kernel launch: torch's intra-op count (so numba's pool and torch's OpenMP
    pool do not oversubscribe the CPU), or 1 for small batches — the launch of a parallel
    region costs more than the work there, and a lot more on a loaded machine, where spinning
    OpenMP workers of torch and numba fight for the cores."""
    n = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if n_points * n_levels < _SERIAL_BELOW:
        n = 1
    numba.set_num_threads(n)
    return n


def _level_order(n_levels: int, n_threads: int) -> np.ndarray:
    """Levels dealt round-robin into ``n_threads`` contiguous blocks: [0, T, 2T, …, 1, 1+T, …]."""
    return np.concatenate([np.arange(t, n_levels, n_threads) for t in range(n_threads)]).astype(np.int64)


class _NumbaHashGrid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, params: Tensor, lv: _LevelArrays, n_feat: int) -> Tensor:  # type: ignore[override]
        x = x.detach().to(torch.float32).contiguous()
        p = params.detach().contiguous()
        out = torch.empty(x.shape[0], lv.offset.shape[0] * n_feat, dtype=torch.float32)
        if x.shape[0] > 0:
            n_levels = lv.offset.shape[0]
            n_threads = _numba_threads(x.shape[0], n_levels)
            n_blocks = max(1, -(-2 * n_threads // n_levels))  # ≥ 2 tasks per thread
            order = _level_order(n_levels, n_threads)
            _grid_kernels(n_feat)[0](x.numpy(), p.numpy(), *lv, order, n_blocks, out.numpy())
        ctx.save_for_backward(x)
        ctx.lv, ctx.n_feat, ctx.n_params = lv, n_feat, params.numel()
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        grad = None
        if ctx.needs_input_grad[1]:
            g = grad_out.detach().to(torch.float32).contiguous()
            grad = torch.empty(ctx.n_params, dtype=torch.float32)  # zeroed per level in the kernel
            n_levels = ctx.lv.offset.shape[0]
            order = _level_order(n_levels, _numba_threads(x.shape[0], n_levels))
            _grid_kernels(ctx.n_feat)[1](x.numpy(), g.numpy(), *ctx.lv, order, grad.numpy())
        return None, grad, None, None  # no gradient w.r.t. positions


def _check_numba_inputs(params: Tensor, x: Tensor) -> None:
    if params.device.type != "cpu" or x.device.type != "cpu":
        raise ValueError(f"the numba hash-grid backend needs CPU tensors (got {x.device}, {params.device})")
    if params.dtype != torch.float32 or params.ndim != 1:
        raise TypeError(f"hash-grid params must be a flat float32 tensor, got {params.dtype} {tuple(params.shape)}")


def hash_encode_numba(params: Tensor, x: Tensor, cfg: HashGridConfig, levels: list[LevelInfo] | None = None) -> Tensor:
    """numba CPU encoding (float32 CPU tensors), differentiable w.r.t. ``params`` only."""
    _check_numba_inputs(params, x)
    lv = _level_arrays(levels if levels is not None else grid_levels(cfg))
    return _NumbaHashGrid.apply(x, params, lv, cfg.n_features_per_level)


# --------------------------------------------------------------------------------------------
# module
# --------------------------------------------------------------------------------------------


class HashGridEncoding(torch.nn.Module):
    """Multiresolution hash encoding ``[N, 3] ∈ [0,1]³ → [N, L·F]`` (float32), tcnn layout.

    ``params`` is the flat float32 table of all levels; see the module docstring for the
    equations and :meth:`levels` for the per-level slices. Positions receive no gradient.
    """

    def __init__(self, cfg: HashGridConfig | None = None, backend: HashGridBackend = "auto") -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else HashGridConfig()
        if backend not in ("auto", "numba", "torch", "tcnn"):
            raise ValueError(f"unknown hash-grid backend {backend!r}")
        self.backend: HashGridBackend = backend
        self._levels = grid_levels(self.cfg)
        self._level_arrays = _level_arrays(self._levels)
        n_params = (self._levels[-1].offset + self._levels[-1].size) * self.cfg.n_features_per_level
        self.params = torch.nn.Parameter(torch.empty(n_params, dtype=torch.float32).uniform_(-_INIT_RANGE, _INIT_RANGE))
        self._tcnn: Any = None  # tinycudann.Encoding, created on the first CUDA call (not a submodule)

    @property
    def n_output_dims(self) -> int:
        return self.cfg.n_output_dims

    @property
    def n_params(self) -> int:
        return self.params.numel()

    def levels(self) -> list[LevelInfo]:
        """Each level's (offset, size) in table entries, resolution, scale and dense flag."""
        return list(self._levels)

    def level_table(self, level: int) -> Tensor:
        """View ``[T_l, F]`` of one level's entries inside ``params``."""
        lv, feat = self._levels[level], self.cfg.n_features_per_level
        return self.params[lv.offset * feat : (lv.offset + lv.size) * feat].view(lv.size, feat)

    def resolve_backend(self, device: torch.device) -> str:
        if self.backend != "auto":
            return self.backend
        if device.type == "cuda" and tcnn_available():
            return "tcnn"
        return "numba" if device.type == "cpu" else "torch"

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[-1] != 3:
            raise ValueError(f"expected positions [N, 3], got {tuple(x.shape)}")
        backend = self.resolve_backend(x.device)
        if backend == "numba":
            _check_numba_inputs(self.params, x)
            return _NumbaHashGrid.apply(x, self.params, self._level_arrays, self.cfg.n_features_per_level)
        if backend == "torch":
            return hash_encode_torch(self.params, x.to(torch.float32), self.cfg)
        if backend == "tcnn":
            return self._forward_tcnn(x)
        raise ValueError(f"unknown hash-grid backend {backend!r}")

    def _forward_tcnn(self, x: Tensor) -> Tensor:
        if x.device.type != "cuda":
            raise ValueError("the tcnn hash-grid backend needs CUDA tensors")
        if self._tcnn is None:
            import tinycudann as tcnn

            enc = tcnn.Encoding(3, self.cfg.tcnn_config(), dtype=torch.float32)
            if enc.params.numel() != self.params.numel():
                raise RuntimeError(f"tcnn HashGrid has {enc.params.numel()} params, ours {self.params.numel()}")
            object.__setattr__(self, "_tcnn", enc)  # keep it out of _modules / state_dict
        self._tcnn.params = self.params  # share our Parameter: one table, our optimiser
        return self._tcnn(x.detach().to(torch.float32).contiguous()).to(torch.float32)

    def extra_repr(self) -> str:
        c = self.cfg
        n_dense = sum(lv.dense for lv in self._levels)
        return (
            f"levels={c.n_levels}, features={c.n_features_per_level}, log2_T={c.log2_hashmap_size}, "
            f"base={c.base_resolution}, scale={c.per_level_scale}, dense_levels={n_dense}, "
            f"params={self.n_params}, backend={self.backend}"
        )
