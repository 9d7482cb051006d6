"""Positions as a set of Hilbert keys (``means_encoding="curve-keys"``): the grid codec's position
coder along the curve.

With the Gaussians on the grid in the order of their quantised positions' 3D Hilbert keys
(:func:`curve_key_order`, laid as a snake), the order itself is information the positions need
not carry again: the b-bit positions are the *set* of their 3b-bit keys, which costs about
log₂ N! bits less than a list. The keys of the high b − r bits (the r low bits stay in the
packed stream of :mod:`~splatpack.codecs.grid.lowbits`, where render-aware precision may drop
them) are sorted and coded as their gaps d_i = k_i − k_{i−1} (k_{−1} = 0): the bit length
ℓ_i = ⌊log₂ d_i⌋ + 1 of each gap (0 for d_i = 0) in the ``ans`` array codec (a semi-static
order-0 model: gaps between curve neighbours have a peaked length distribution), and the
ℓ_i − 1 bits below each gap's leading one raw, most significant first: the Elias-gamma split
(Elias, "Universal codeword sets and representations of the integers", IEEE Trans. IT 21, 1975)
with the prefix entropy-coded. Measured (README, "Fifth round") it takes 19.3 bits a Gaussian
where the position image and its low bits took 22.2–22.4 on plant and biker at quality 6.

Stream layout (``docs/spk-format.md``): ``grid.means.lengths`` u8 [N, 1] (ℓ_i, Gaussians in key
order), ``grid.means.rest`` the ℓ_i − 1 low bits of each gap in key order, packed most
significant first into bytes, the last byte padded with zeros. The k-th key belongs to the
Gaussian in the k-th cell of the snake (:func:`~splatpack.compress.curve_order.snake_cells`).
No library codes a sorted integer set with an entropy-coded prefix (Elias–Fano codes the upper
bits in unary, which is larger here), hence numpy.
"""

from __future__ import annotations

import numpy as np

from splatpack.compress.curve_order import hilbert_key
from splatpack.compress.quantise import quantise_channels

__all__ = ["curve_key_order", "gap_streams", "keys_from_streams", "rest_bit_count"]


def curve_key_order(t: np.ndarray, bits: int, value_range=None) -> np.ndarray:
    """The permutation [N] that sorts coded positions t [N, 3] by the Hilbert key of their
    ``bits``-bit quantisation (:func:`~splatpack.compress.quantise.quantise_channels`, over
    ``value_range`` = (lo, hi) when given). The keys nest, so this sorts the keys of the high
    bits too, for any split of low bits."""
    q, _, _ = quantise_channels(t, bits, *(value_range or (None, None)))
    return np.argsort(hilbert_key(q.astype(np.int64), bits), kind="stable")


def gap_streams(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lengths u8 [N], packed rest u8) of non-decreasing ``keys`` [N] (below 2^48: 3 axes of at
    most 16 bits, which fit a JavaScript double exactly)."""
    k = np.asarray(keys, np.uint64)
    gaps = np.diff(k, prepend=np.uint64(0))
    lengths = np.zeros(len(k), np.uint8)
    nz = gaps > 0
    # float64 is exact for the integers below 2^48: the bit length of each gap
    lengths[nz] = np.floor(np.log2(gaps[nz].astype(np.float64))).astype(np.uint8) + 1
    owner, shift, _ = _rest_bits(lengths)
    bits = ((gaps[owner] >> shift) & np.uint64(1)).astype(np.uint8)
    return lengths, np.packbits(bits, bitorder="big")


def _rest_bits(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each bit of the rest stream: the gap it belongs to and its place value (a shift),
    most significant first; and each gap's first bit in the stream [N]."""
    below = np.maximum(np.asarray(lengths, np.int64) - 1, 0)
    owner = np.repeat(np.arange(len(below)), below)
    starts = np.cumsum(below) - below
    shift = (below[owner] - 1 - (np.arange(len(owner)) - starts[owner])).astype(np.uint64)
    return owner, shift, starts


def rest_bit_count(lengths: np.ndarray) -> int:
    """The bits in the rest stream of gaps with bit ``lengths`` [N]: Σ max(ℓ_i − 1, 0)."""
    return int(np.maximum(lengths.astype(np.int64) - 1, 0).sum())


def keys_from_streams(lengths: np.ndarray, packed: np.ndarray, key_bits: int) -> np.ndarray:
    """Inverse of :func:`gap_streams`: the keys [N] uint64, checked to be below 2^key_bits.
    ``packed`` must hold exactly ``ceil(rest_bit_count(lengths) / 8)`` bytes (the caller reads
    it at that size). Raises :class:`ValueError` on a length over ``key_bits``, non-zero
    padding or keys past the end of the curve."""
    ell = np.asarray(lengths, np.int64)
    if ell.size and int(ell.max()) > key_bits:
        raise ValueError(f"a gap of more than {key_bits} bits")
    count = rest_bit_count(ell)
    if count % 8 and int(packed[-1]) & ((1 << (8 - count % 8)) - 1):
        raise ValueError("non-zero padding bits")
    bits = np.unpackbits(np.asarray(packed, np.uint8), bitorder="big", count=count).astype(np.uint64)
    _, shift, starts = _rest_bits(ell)
    rest = np.zeros(len(ell), np.uint64)
    full = ell > 1
    if count:
        rest[full] = np.bitwise_or.reduceat(bits << shift, starts[full])
    lead = np.left_shift(np.uint64(1), np.maximum(ell - 1, 0).astype(np.uint64))
    gaps = np.where(ell > 0, lead | rest, np.uint64(0))
    keys = np.cumsum(gaps, dtype=np.uint64)
    # each gap is below 2^48, so a wrap past 2^64 shows as a decrease
    if len(keys) and ((keys[1:] < keys[:-1]).any() or int(keys[-1]) >> key_bits):
        raise ValueError(f"keys past the end of a {key_bits}-bit curve")
    return keys
