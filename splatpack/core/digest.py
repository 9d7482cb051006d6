"""SHA-256 of a nested state (dicts, lists, tensors, numbers, strings) as ``torch.save`` stores
it: tensors by dtype, shape and bytes, everything else by type and repr, so a flipped bit in any
tensor or a changed key gives another digest. Checkpoints and model files carry it."""

from __future__ import annotations

import hashlib
from typing import Any

import torch

__all__ = ["state_digest"]


def _feed(h: Any, value: Any) -> None:
    if torch.is_tensor(value):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}|".encode())
        for k, v in value.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}|".encode())
        for v in value:
            _feed(h, v)
    else:
        r = repr(value)
        h.update(f"S{type(value).__name__}:{len(r)}:{r}|".encode())


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 (hex) of ``state``: tensors by dtype, shape and bytes, the rest by repr."""
    h = hashlib.sha256()
    _feed(h, state)
    return h.hexdigest()
