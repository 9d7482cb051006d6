"""Per-channel uniform quantisation and the transforms that precede it, as numpy (the encoders)
and torch straight-through (quantisation-aware training).

* :func:`signed_log1p` / :func:`signed_expm1`: t = sign(x)·log1p(|x|), Self-Organizing
  Gaussians' log activation of positions (Morgenstern et al., ECCV 2024), which spends a
  quantiser's precision near the scene centre; shared by the grid codec and the SOG writer.
* :func:`quantise_channels`: per channel c over its range [lo_c, hi_c] with b bits,
  Δ_c = (hi_c − lo_c)/(2^b − 1), q = round((t − lo_c)/Δ_c) ∈ [0, 2^b − 1], decoded by
  :func:`dequantise_channels` as t̂ = lo_c + q·Δ_c in float32, so |t̂ − t| ≤ Δ_c/2 (plus float32
  rounding); :func:`fake_quantise` is the same quantiser straight-through (Bengio et al. 2013).
  Values already on a coarse uniform lattice (a quantised file's codes) are coded on it exactly
  (:func:`lattice_step`).
* :func:`smallest_three`: a unit quaternion as its three smallest components and the index of
  the largest, which is recovered as √(1 − Σ small²) (:func:`from_smallest_three`).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "OTHER_COMPONENTS",
    "channel_range",
    "channel_step",
    "dequantise_channels",
    "fake_quantise",
    "from_smallest_three",
    "lattice_bits",
    "lattice_step",
    "quantise_channels",
    "signed_expm1",
    "signed_log1p",
    "smallest_three",
    "unit_quats_w_positive",
]

#: for the index k of a quaternion's largest component, the indices of the other three, ascending
OTHER_COMPONENTS = np.array([[j for j in range(4) if j != k] for k in range(4)])


def signed_log1p(x):
    """sign(x)·log1p(|x|) (SOG's log activation of positions)."""
    return np.sign(x) * np.log1p(np.abs(x))


def signed_expm1(t):
    """Inverse of :func:`signed_log1p`: sign(t)·expm1(|t|)."""
    return np.sign(t) * np.expm1(np.abs(t))


def unit_quats_w_positive(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) with w ≥ 0; a zero quaternion becomes the identity."""
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norm > 0, q / np.where(norm > 0, norm, 1), np.array([1.0, 0, 0, 0]))
    return np.where(q[:, :1] < 0, -q, q)


def smallest_three(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit quaternions [N, 4] → (the three components other than the largest |q_k|, with the
    sign that makes the largest positive, [N, 3] in [−1/√2, 1/√2]; k [N] in 0..3)."""
    k = np.abs(q).argmax(1)
    rows = np.arange(len(q))
    q = q * np.where(q[rows, k] < 0, -1.0, 1.0)[:, None]
    return q[rows[:, None], OTHER_COMPONENTS[k]], k


def from_smallest_three(small: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Inverse of :func:`smallest_three`: the largest component is √(1 − Σ small²)."""
    q = np.zeros((len(k), 4), small.dtype)
    rows = np.arange(len(k))
    q[rows[:, None], OTHER_COMPONENTS[k]] = small
    q[rows, k] = np.sqrt(np.maximum(0, 1 - (small.astype(np.float64) ** 2).sum(1))).astype(small.dtype)
    return q


def _merged_unique(x: np.ndarray, span: float) -> np.ndarray:
    """The sorted distinct values of x, those closer than 10⁻⁶ of ``span`` to the previous merged."""
    u = np.unique(x)
    return u[np.concatenate([[True], np.diff(u) > 1e-6 * span])]


def lattice_step(x: np.ndarray, levels: int) -> float | None:
    """The step s of a uniform lattice min(x) + j·s, j = 0..m with m ≤ ``levels``, that every value
    of x [N] lies on (within 10⁻³ s, after merging values closer than 10⁻⁶ of the span: float
    noise), or None. Splats saved in quantised formats carry such lattices: .splat colours and
    SPZ colours and log-scales are 8-bit codes. The step is the smallest gap between values or
    a whole fraction of it (a sparse sample need not hold two neighbouring codes)."""
    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        return None
    sample = len(x) // (4 * (levels + 1))  # on the codec's path: a strided sample rejects float channels
    if sample > 1 and _merged_unique(x[::sample], hi - lo).size > levels + 1:
        return None
    u = _merged_unique(x, hi - lo)
    if len(u) > levels + 1:
        return None
    gap = float(np.diff(u).min())
    for divisor in range(1, 17):
        m = round((hi - lo) / (gap / divisor))
        if m > levels:
            return None
        s = (hi - lo) / m
        k = (u - lo) / s
        if np.abs(k - np.round(k)).max() <= 1e-3:
            return s
    return None


def lattice_bits(t: np.ndarray) -> int | None:
    """The fewest bits (≤ 16) that code every channel of t [N, C] exactly, when each lies on a
    uniform lattice (:func:`lattice_step`), else None."""
    need = 1
    for c in range(t.shape[1]):
        if not float(t[:, c].max()) > float(t[:, c].min()):
            continue  # a constant channel
        s = lattice_step(t[:, c], (1 << 16) - 1)
        if s is None:
            return None
        need = max(need, int(round((float(t[:, c].max()) - float(t[:, c].min())) / s)).bit_length())
    return need


def channel_range(t: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(lo [C], hi [C]) float32 the quantiser codes t [N, C] over with b bits: each channel's
    min..max, and for a channel on a lattice of at most 2^b − 1 steps (:func:`lattice_step`)
    hi = lo + (2^b − 1)·s, so that Δ is the lattice's step and every value is coded exactly (to
    float32 rounding)."""
    lo = t.min(axis=0).astype(np.float32)
    hi = t.max(axis=0).astype(np.float32)
    levels = (1 << bits) - 1
    for c in range(t.shape[1]):
        s = lattice_step(t[:, c], levels) if len(t) else None
        if s is not None and np.isfinite(np.float32(float(lo[c]) + levels * s)):
            hi[c] = np.float32(float(lo[c]) + levels * s)
    return lo, hi


def quantise_channels(t: np.ndarray, bits: int, lo=None, hi=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q [N, C] uint16, lo [C] float32, hi [C] float32), with the decoder's float32 step, over
    :func:`channel_range` or the range ``lo``..``hi`` given (values outside it clip)."""
    if lo is None or hi is None:
        lo, hi = channel_range(t, bits)
    lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    levels = (1 << bits) - 1
    step = channel_step(lo, hi, bits).astype(np.float64)
    safe = np.where(step > 0, step, 1.0)
    q = np.where(step > 0, np.rint((t - lo.astype(np.float64)) / safe), 0.0)
    return np.clip(q, 0, levels).astype(np.uint16), lo, hi


def channel_step(lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Δ = (hi − lo)/(2^b − 1) in float32 (the decoder's arithmetic)."""
    return (hi - lo) / np.float32((1 << bits) - 1)


def dequantise_channels(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """t̂ = lo + q·Δ, float32 (a forged range may overflow: the reader checks the result)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return lo + q.astype(np.float32) * channel_step(lo, hi, bits)


def fake_quantise(
    t: torch.Tensor, bits: int, drop: torch.Tensor | None = None, value_range: tuple | None = None
) -> torch.Tensor:
    """Straight-through quantisation of t [N, C] as :func:`quantise_channels` does it (per channel
    over the current min..max, or the fixed ``value_range`` (lo [C], hi [C]), 2^b − 1 steps): the
    forward value is the decoded t̂, the gradient is the identity (Bengio et al. 2013). ``drop``
    [N]: the low bits k_i row i drops, decoded at the middle of the 2^k_i steps it no longer knows
    (the grid codec's per-Gaussian precision, :func:`splatpack.codecs.grid.lowbits.join_low_bits`)."""
    levels = (1 << bits) - 1
    if value_range is None:
        lo = t.detach().amin(0, keepdim=True)
        step = (t.detach().amax(0, keepdim=True) - lo) / levels
    else:
        lo, hi = (torch.as_tensor(np.asarray(v, np.float32), device=t.device)[None] for v in value_range)
        step = (hi - lo) / levels
    safe = torch.where(step > 0, step, torch.ones_like(step))
    index = torch.round((t.detach() - lo) / safe)
    if value_range is not None:
        index = index.clamp(0, levels)
    if drop is not None:
        width = torch.pow(2.0, drop.to(t.device, t.dtype))[:, None]
        index = torch.where(width > 1, torch.floor(index / width) * width + width / 2, index)
    q = torch.where(step > 0, lo + index * safe, t.detach())
    return t + (q - t.detach())
