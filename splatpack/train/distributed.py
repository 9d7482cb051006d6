"""Data-parallel training over ``torch.distributed`` (the engine gsplat's multi-GPU trainer uses); the
process-group machinery (ranks, spawning, gradient averaging) is :mod:`splatpack.core.distributed`.

Every rank holds all the Gaussians. Each step draws one global batch of ``batch_size × world_size``
cameras from a view order that every rank draws alike (same seed); rank r renders its slice. Then

* the gradients are averaged over the ranks (one all-reduce of the flattened gradients), so every
  rank takes the same Adam step as one process with the whole batch would;
* the densification statistics (the screen-space gradient sums and counts) are summed over the
  ranks before each refinement, so clone, split, prune and opacity resets are decided on the
  global statistics, identically on every rank; splits draw from the global torch RNG, which
  every rank seeds alike and advances alike;
* the methods' running buffers (e.g. R-VQ's EMA codebooks, updated from each rank's own views)
  are averaged after every step.

Rank 0 writes checkpoints, outputs and progress; at the end the ranks compare a digest of their
parameters and the run fails if they differ. Backend: gloo on the CPU, nccl on CUDA.

Why not ``DistributedDataParallel``: it registers a fixed set of parameters of fixed shapes, and
densification resizes every Gaussian tensor every few hundred steps (gsplat's trainer reduces by
hand too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from splatpack.core.distributed import Ranks

__all__ = ["average_buffers", "keep_share", "sum_statistics", "summed_statistics"]


def average_buffers(modules: Iterable[torch.nn.Module], world_size: int) -> None:
    """Average the modules' floating-point buffers (running statistics) over the ranks."""
    for m in modules:
        for b in m.buffers():
            if b.is_floating_point():
                dist.all_reduce(b)
                b /= world_size


def sum_statistics(state: dict[str, Any]) -> None:
    """Sum the densifier's per-Gaussian statistics over the ranks (gsplat's ``DefaultStrategy``
    state: ``grad2d`` and ``count`` add up; ``radii`` is a running maximum)."""
    for key in ("grad2d", "count"):
        if state.get(key) is not None:
            dist.all_reduce(state[key])
    if state.get("radii") is not None:
        dist.all_reduce(state["radii"], op=dist.ReduceOp.MAX)


def summed_statistics(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of the densifier's state with the statistics summed over the ranks (what a
    checkpoint holds; the ranks keep accumulating their own shares)."""
    copy = {k: v.clone() if isinstance(v, Tensor) else v for k, v in state.items()}
    sum_statistics(copy)
    return copy


def keep_share(state: dict[str, Any], ranks: Ranks) -> None:
    """After resuming from summed statistics: rank 0 holds the sum, the others start from zero,
    so that the next sum over the ranks counts every camera once."""
    if ranks.is_main:
        return
    for key in ("grad2d", "count"):
        if state.get(key) is not None:
            state[key].zero_()
