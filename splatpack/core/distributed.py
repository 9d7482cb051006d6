"""Multi-process jobs over ``torch.distributed`` on one machine: the ranks ``torchrun`` (or
:func:`spawn`, behind ``--nproc N``) give a process, joining their process group (gloo on the
CPU, nccl on CUDA), averaging gradients with one all-reduce, and checking that the ranks agree.
Used by the scene trainer (:mod:`splatpack.train.distributed`) and the generative models'
trainer (:mod:`splatpack.generative.training`).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from splatpack.core.errors import SplatpackError

__all__ = [
    "SINGLE",
    "SPAWNED_ENV",
    "Ranks",
    "all_equal",
    "any_rank",
    "average_gradients",
    "barrier",
    "init_process_group",
    "parameter_digest",
    "ranks_from_environment",
    "spawn",
]


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE = Ranks()
SPAWNED_ENV = "SPLATPACK_SPAWNED"  # set in the processes :func:`spawn` starts (the launcher reports)


def ranks_from_environment() -> Ranks:
    """The ranks ``torchrun`` (or :func:`spawn`) set in the environment; :data:`SINGLE` when none."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        raise SplatpackError("RANK and WORLD_SIZE must be integers") from None
    if world <= 1:
        return SINGLE
    if not 0 <= rank < world:
        raise SplatpackError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return Ranks(rank, world)


def init_process_group(ranks: Ranks, device: str) -> None:
    """Join the job's process group (once): nccl on CUDA, gloo on the CPU."""
    if not ranks.distributed or dist.is_initialized():
        return
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", ranks.rank)))
    for var in ("MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise SplatpackError(f"{var} is not set: launch with --nproc N or torchrun")
    dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=ranks.rank, world_size=ranks.world_size)


def average_gradients(tensors: Iterable[Tensor], world_size: int) -> None:
    """Replace each gradient by its mean over the ranks (one all-reduce of them all, flattened).
    Tensors without a gradient are skipped; every rank runs the same code, so the same ones."""
    with_grad = [t for t in tensors if t.grad is not None]
    if not with_grad:
        return
    flat = torch.cat([t.grad.reshape(-1) for t in with_grad])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for t in with_grad:
        n = t.grad.numel()
        t.grad.copy_(flat[offset : offset + n].view_as(t.grad))
        offset += n


def parameter_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over the tensors' names, shapes and bytes."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def all_equal(value: str) -> bool:
    """Whether every rank passed the same ``value``."""
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return len(set(values)) == 1


def any_rank(flag: bool, device: str = "cpu") -> bool:
    """Whether ``flag`` is set on any rank (a collective: every rank must call it; ``device``:
    where the backend reduces, ``cuda`` for nccl)."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world_size: int, port: int, fn: Callable[..., Any], args: Sequence[Any]) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        **{SPAWNED_ENV: "1"},
    )
    try:
        fn(*args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def spawn(world_size: int, fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` in ``world_size`` new processes on this machine, as ranks 0 … N−1 of one
    job (the environment :func:`ranks_from_environment` reads). ``fn`` must be importable by
    name (a module-level function). A rank that fails fails the job, with its error."""
    import torch.multiprocessing as mp

    try:
        mp.spawn(_rank_main, args=(world_size, _free_port(), fn, args), nprocs=world_size, join=True)
    except mp.ProcessRaisedException as e:  # the child's traceback as text: keep its last line
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        last = re.sub(r"^splatpack\.[\w.]+Error: ", "", lines[-1]) if lines else str(e)
        raise SplatpackError(f"a training process failed: {last}") from None
    except mp.ProcessExitedException as e:
        raise SplatpackError(f"a training process exited with code {e.exit_code}") from None
