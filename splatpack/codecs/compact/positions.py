"""Positions of a compact scene: a quantised grid over the bounding box, Morton codes and the
byte planes of their sorted first differences.

Each axis is quantised to ``bits`` over the box, the three integers are interleaved into one
Morton code (x in the lowest bit), the Gaussians are sorted by it, and the code *differences* are
stored as little-endian bytes [N, ⌈3b/8⌉], so the high planes are almost constant and Gaussians of
one region are neighbours in the file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "delta_bytes",
    "dequantize_positions",
    "morton_decode",
    "morton_encode",
    "position_bytes",
    "quantize_positions",
    "undelta_bytes",
]


def _spread3(v: np.ndarray) -> np.ndarray:
    """Insert two zero bits between the low 21 bits of v (uint64)."""
    v = v.astype(np.uint64) & np.uint64(0x1FFFFF)
    v = (v | (v << np.uint64(32))) & np.uint64(0x1F00000000FFFF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x1F0000FF0000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x100F00F00F00F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x10C30C30C30C30C3)
    v = (v | (v << np.uint64(2))) & np.uint64(0x1249249249249249)
    return v


def _compact3(v: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_spread3`: every third bit of v, packed into the low 21 bits."""
    v = v.astype(np.uint64) & np.uint64(0x1249249249249249)
    v = (v ^ (v >> np.uint64(2))) & np.uint64(0x10C30C30C30C30C3)
    v = (v ^ (v >> np.uint64(4))) & np.uint64(0x100F00F00F00F00F)
    v = (v ^ (v >> np.uint64(8))) & np.uint64(0x1F0000FF0000FF)
    v = (v ^ (v >> np.uint64(16))) & np.uint64(0x1F00000000FFFF)
    v = (v ^ (v >> np.uint64(32))) & np.uint64(0x1FFFFF)
    return v


def morton_encode(q: np.ndarray) -> np.ndarray:
    """[N, 3] integers < 2^21 → [N] uint64 Morton codes (x in the lowest bit)."""
    return _spread3(q[:, 0]) | (_spread3(q[:, 1]) << np.uint64(1)) | (_spread3(q[:, 2]) << np.uint64(2))


def morton_decode(code: np.ndarray) -> np.ndarray:
    """Inverse of :func:`morton_encode`: [N] uint64 → [N, 3] uint32."""
    code = code.astype(np.uint64)
    return np.stack([_compact3(code >> np.uint64(i)) for i in range(3)], axis=1).astype(np.uint32)


def position_bytes(bits: int) -> int:
    """Bytes per Gaussian of a Morton-code difference with ``bits`` per axis: ⌈3b/8⌉."""
    return (3 * bits + 7) // 8


def delta_bytes(codes: np.ndarray, nbytes: int) -> np.ndarray:
    """Sorted uint64 codes → first-difference byte planes [N, nbytes] (little-endian)."""
    d = np.diff(codes, prepend=np.uint64(0)).astype("<u8")
    return d.view(np.uint8).reshape(-1, 8)[:, :nbytes].copy()


def undelta_bytes(planes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`delta_bytes`: byte planes [N, nbytes] → the sorted uint64 codes."""
    n, nb = planes.shape
    full = np.zeros((n, 8), np.uint8)
    full[:, :nb] = planes
    return np.cumsum(full.view("<u8").reshape(n), dtype=np.uint64)


def quantize_positions(means: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(integer grid [N, 3] uint64, lo [3] f32, hi [3] f32) over the bounding box."""
    if not 1 <= bits <= 21:
        raise ValueError("position_bits must be in 1..21")
    lo = means.min(0).astype(np.float32)
    hi = means.max(0).astype(np.float32)
    span = np.maximum(hi - lo, np.float32(1e-12))
    levels = (1 << bits) - 1
    q = np.rint((means - lo) / span * levels).clip(0, levels).astype(np.uint64)
    return q, lo, hi


def dequantize_positions(morton: np.ndarray, position_meta: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`quantize_positions` after :func:`morton_encode`: [N] codes → [N, 3] float32
    grid points, from the header's ``{"bits", "lo", "hi"}``."""
    lo = np.asarray(position_meta["lo"], np.float32)
    hi = np.asarray(position_meta["hi"], np.float32)
    levels = np.float32((1 << int(position_meta["bits"])) - 1)
    step = np.maximum(hi - lo, np.float32(1e-12)) / levels
    grid = morton_decode(morton).astype(np.float32)
    return (lo + grid * step).astype(np.float32)
