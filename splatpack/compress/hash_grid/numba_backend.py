"""The numba CPU backend: an autograd Function around :mod:`.kernels`, and its thread/level scheduling.

tinycudann is CUDA-only and not on PyPI (it is built from source against a CUDA toolkit), so a
CPU-first toolkit needs its own kernel (Müller et al., "Instant Neural Graphics Primitives",
SIGGRAPH 2022). Levels are the tasks, dealt so that cheap coarse and cache-missing fine levels
balance over the threads. No gradient reaches the positions: the encoding is differentiated with
respect to its table only.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
import torch
from torch import Tensor

from splatpack.compress.hash_grid.config import HashGridConfig, LevelInfo, grid_levels
from splatpack.compress.hash_grid.kernels import grid_kernels

__all__ = ["LevelArrays", "NumbaHashGrid", "check_numba_inputs", "hash_encode_numba", "level_arrays"]


class LevelArrays(NamedTuple):
    """The :class:`LevelInfo` fields of all levels as arrays, in the kernels' argument order."""

    offset: np.ndarray
    size: np.ndarray
    res: np.ndarray
    scale: np.ndarray
    dense: np.ndarray


def level_arrays(levels: list[LevelInfo]) -> LevelArrays:
    return LevelArrays(
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


class NumbaHashGrid(torch.autograd.Function):
    """``[N, 3] → [N, L·F]`` on CPU float32 tensors; the backward gives the table's gradient only."""

    @staticmethod
    def forward(ctx, x: Tensor, params: Tensor, lv: LevelArrays, n_feat: int) -> Tensor:  # type: ignore[override]
        x = x.detach().to(torch.float32).contiguous()
        p = params.detach().contiguous()
        out = torch.empty(x.shape[0], lv.offset.shape[0] * n_feat, dtype=torch.float32)
        if x.shape[0] > 0:
            n_levels = lv.offset.shape[0]
            n_threads = _numba_threads(x.shape[0], n_levels)
            n_blocks = max(1, -(-2 * n_threads // n_levels))  # ≥ 2 tasks per thread
            order = _level_order(n_levels, n_threads)
            grid_kernels(n_feat)[0](x.numpy(), p.numpy(), *lv, order, n_blocks, out.numpy())
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
            grid_kernels(ctx.n_feat)[1](x.numpy(), g.numpy(), *ctx.lv, order, grad.numpy())
        return None, grad, None, None  # no gradient w.r.t. positions


def check_numba_inputs(params: Tensor, x: Tensor) -> None:
    """Raise unless ``params`` is a flat float32 CPU tensor and ``x`` a CPU tensor."""
    if params.device.type != "cpu" or x.device.type != "cpu":
        raise ValueError(f"the numba hash-grid backend needs CPU tensors (got {x.device}, {params.device})")
    if params.dtype != torch.float32 or params.ndim != 1:
        raise TypeError(f"hash-grid params must be a flat float32 tensor, got {params.dtype} {tuple(params.shape)}")


def hash_encode_numba(params: Tensor, x: Tensor, cfg: HashGridConfig, levels: list[LevelInfo] | None = None) -> Tensor:
    """numba CPU encoding (float32 CPU tensors), differentiable w.r.t. ``params`` only."""
    check_numba_inputs(params, x)
    lv = level_arrays(levels if levels is not None else grid_levels(cfg))
    return NumbaHashGrid.apply(x, params, lv, cfg.n_features_per_level)
