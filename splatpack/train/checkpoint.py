"""Checkpoints of a training run, written atomically, from which ``resume`` continues bit for bit.

A checkpoint holds the step, the parameters, every optimiser and the scheduler, the densifier's
state, both RNG states (the view order's generator and torch's), the view order left in this
epoch, the config, and per method its modules, their optimisers and its
:meth:`~splatpack.train.hooks.MethodHooks.state_dict`. Everything in it is a tensor, number,
string, list or dict, so it is read with ``torch.load(weights_only=True)``: no pickled code runs
from a checkpoint. Beside them, ``sha256`` holds a SHA-256 over all of it (every tensor's dtype,
shape and bytes, every key and value; :func:`state_digest`), checked before anything is
restored: a checkpoint whose bytes changed (a flipped bit in the parameters) is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from splatpack.core.atomic import atomic_write
from splatpack.core.digest import state_digest
from splatpack.core.errors import SplatpackError
from splatpack.train.config import config_to_dict

if TYPE_CHECKING:
    from splatpack.train.trainer import Trainer

__all__ = ["CHECKPOINT_NAME", "load_checkpoint", "save_checkpoint", "state_digest"]

CHECKPOINT_NAME = "checkpoint.pt"


def _on(device: str, state: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in state.items()}


def _verify(state: Any, path: Path) -> None:
    """Refuse a state without its checksum or whose checksum does not match (removes ``sha256``)."""
    stored = state.pop("sha256", None) if isinstance(state, dict) else None
    if not isinstance(stored, str):
        raise SplatpackError(
            "cannot resume from checkpoint: it holds no checksum (not written by this splatpack)", path
        )
    if state_digest(state) != stored:
        raise SplatpackError("cannot resume from checkpoint: its contents do not match their SHA-256 (corrupted)", path)


def save_checkpoint(trainer: Trainer, path: Path, strategy_state: dict | None = None) -> None:
    """Write ``trainer``'s state to ``path`` (atomically); ``strategy_state`` replaces the
    densifier's (data-parallel runs save the statistics summed over the ranks)."""
    t = trainer
    state = {
        "step": t.step,
        "train_seconds": t.train_seconds,
        "params": {k: v.detach().cpu() for k, v in t.params.items()},
        "optimizers": {k: o.state_dict() for k, o in t.optimizers.items()},
        "scheduler": t.scheduler.state_dict(),
        "strategy_state": _on("cpu", t.strategy_state if strategy_state is None else strategy_state),
        "rng": t.rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "order": t.order,
        "config": config_to_dict(t.cfg),
        "net_optimizers": {k: o.state_dict() for k, o in t.net_optimizers.items()},
        "modules": {k: m.state_dict() for k, m in t.modules().items()},
        "methods": {h.name: h.state_dict() for h in t.hooks},
    }
    state["sha256"] = state_digest(state)
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def load_checkpoint(trainer: Trainer, path: Path) -> bool:
    """Restore ``trainer`` (set up) from ``path``; False when there is no checkpoint there."""
    t = trainer
    if not path.is_file():
        return False
    try:
        state = torch.load(path, map_location=t.device, weights_only=True)
    except Exception as e:
        raise SplatpackError(f"cannot resume from checkpoint: {type(e).__name__}: {e}", path) from None
    _verify(state, path)
    try:
        t.params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(t.device)) for k, v in state["params"].items()})
        t.make_optimizers()
        for k, o in t.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        t.scheduler.load_state_dict(state["scheduler"])
        for k, m in t.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in t.net_optimizers.items():
            o.load_state_dict(state["net_optimizers"][k])
        for h in t.hooks:
            h.load_state_dict(state["methods"][h.name], t.device)
    except Exception as e:
        raise SplatpackError(f"cannot resume from checkpoint: {type(e).__name__}: {e}", path) from None
    t.strategy_state = _on(t.device, state["strategy_state"])
    t.rng.set_state(state["rng"].cpu())  # RNG states live on the CPU whatever map_location did
    torch.set_rng_state(state["torch_rng"].cpu())
    t.order = list(state["order"])
    t.step = int(state["step"])
    t.train_seconds = float(state["train_seconds"])
    return True
