"""The SH rest of a grid scene as a low-rank generator (``sh_mode="basis"``): a basis shared by
all Gaussians (:func:`splatpack.compress.sh_basis.fit_sh_basis`, PCA over the 3(K−1)-vectors)
and r coefficients per Gaussian on the sorted grid, instead of 3(K−1) coefficient planes.

Sections: ``grid.shN.coefs``, r one-channel planes of ``shN.bits``-bit integers coded like any
attribute grid, and ``grid.shN.basis``, float32 [1 + r, 3(K−1)] (the mean, then the basis
vectors as rows), deflated; where some Gaussians' SH rest is exactly zero
(:func:`splatpack.compress.sh_basis.zeroed_sh_rest`), ``grid.shN.zero``, a deflated bit mask of
them, and the coefficients of the others only, packed row-major without the grid's holes
(:func:`.layout.packed_planes`; the coefficients hardly depend on their grid neighbours, so
nothing is lost by leaving the grid). The coefficients share one quantisation step Δ (set by the first,
widest component over ``shN.bits``) rather than one per channel: with an orthonormal basis the
SH error is Σ_c Δ_c²/12, which one shared step minimises for the levels spent (reverse
water-filling at high rate), and the narrow components then use few of their levels, which the
image coder makes cheap. Decoded: x̂ = μ + Σ_j ĉ_j b_j in float32, in that order.
"""

from __future__ import annotations

import numpy as np

from splatpack.compress.quantise import dequantise_channels
from splatpack.compress.sh_basis import fit_sh_basis
from splatpack.core.errors import SplatpackError

__all__ = ["MAX_BASIS_RANK", "basis_coefficients", "basis_values", "shared_step_ranges"]

MAX_BASIS_RANK = 45  # 3(K−1) at SH degree 3


def shared_step_ranges(coefs: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(lo [r], hi [r]) float32 giving every channel the step of the widest over ``bits``."""
    lo = coefs.min(axis=0).astype(np.float32)
    width = float((coefs.max(axis=0) - lo).max()) if len(coefs) else 0.0
    hi = lo + np.float32(width)
    return lo, hi.astype(np.float32)


def _quantise(t: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    levels = (1 << bits) - 1
    step = ((hi - lo) / np.float32(levels)).astype(np.float64)
    safe = np.where(step > 0, step, 1.0)
    q = np.where(step > 0, np.rint((t - lo.astype(np.float64)) / safe), 0.0)
    return np.clip(q, 0, levels).astype(np.uint16)


def basis_coefficients(t: np.ndarray, rank: int, bits: int, lattice=None):
    """(q [N, r] uint16, lo [r], hi [r], table [1 + r, D] float32) of the SH rest t [N, D]: the
    rank-r PCA generator's coefficients quantised with one shared step, and its mean and basis.
    ``lattice``: a fixed (lo, hi, table) to code on instead of fitting them (the one
    quantisation-aware refinement rendered, :mod:`splatpack.train.grid`); ``rank`` is then its r."""
    n, dims = t.shape
    if lattice is not None:
        lo, hi, table = (np.asarray(v, np.float32) for v in lattice)
        r = len(table) - 1
        if table.ndim != 2 or table.shape[1] != dims or not r or lo.shape != (r,) or hi.shape != (r,):
            shapes = [v.shape for v in (lo, hi, table)]
            raise SplatpackError(f"grid codec: an SH-rest lattice (lo, hi, table) of shapes {shapes} for {dims} dims")
        coefs = (t.astype(np.float64) - table[0]) @ table[1:].T.astype(np.float64)
        return _quantise(coefs, lo, hi, bits), lo, hi, np.ascontiguousarray(table)
    r = max(1, min(int(rank), dims, MAX_BASIS_RANK))
    x = t.reshape(n, dims // 3, 3)
    basis = fit_sh_basis(x, r, "pca")
    coefs = basis.project(x)
    lo, hi = shared_step_ranges(coefs, bits)
    table = np.concatenate([basis.mean.reshape(1, dims), basis.left.T]).astype(np.float32)
    return _quantise(coefs, lo, hi, bits), lo, hi, np.ascontiguousarray(table)


def basis_values(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int, table: np.ndarray) -> np.ndarray:
    """The decoded SH rest [N, D] = μ + ĉ B, float32 (the encoder's and the reader's arithmetic)."""
    coefs = dequantise_channels(q, lo, hi, bits)
    with np.errstate(over="ignore", invalid="ignore"):
        return (table[0] + coefs @ table[1:]).astype(np.float32)
