"""Low bits outside the image, and per-Gaussian precision: the grid codec's bit split.

**Split.** An attribute quantised to b bits is coded as its high b − r bits in the image and its
r low bits in a packed bit stream (``grid.<a>.low``). The low bits of PLAS-sorted positions and
rotations are noise to an image predictor: lossless JPEG XL spends more than one bit on each
(figures in the README), so the split loses nothing and saves a little. No library packs a
variable number of bits per element, hence numpy's ``packbits``.

**Dropped bits** (render-aware per-Gaussian precision). Each Gaussian i may store only the
r − k_i most significant of its low bits (k_i is the scene's class plane ``grid.drop`` times the
attribute's depth, or a plane of its own, ``grid.<a>.drop``); the decoder
puts the value at the middle of the 2^{k_i} steps it no longer knows. An error δ in Gaussian i
costs s_i·δ² of render MSE to first order, s_i its render sensitivity
(:func:`splatpack.compress.sensitivity.render_sensitivity`), so bits are best dropped where s_i
is smallest (high-rate bit allocation, Gersho & Gray, *Vector Quantization and Signal
Compression*, §8.3: the optimal step grows as s_i^{−1/2}). The encoder uses two classes: the
fraction ``drop_fraction`` of Gaussians whose drops cost the least drop :func:`drop_bits` bits of
every attribute, the others none (:func:`gaussian_drops`): one class plane for all attributes
(per-attribute planes hold any other depths). Depths graded by ⌊½ log₂(κ/s_i)⌋ were measured
too: their plane costs about a bit a Gaussian, which ate the bits they saved (README: the grid
codec).
Insensitive Gaussians (occluded, faint, small on screen) lose their low bits, visible ones keep
them.

Stream layout (``docs/spk-format.md``): Gaussians in the decoder's order (the grid's raster
order), for each its channels in order, for each channel its r − k_i kept bits, most significant
first; the bits packed most significant first into bytes, the last byte padded with zeros.
"""

from __future__ import annotations

import numpy as np

from splatpack.codecs.grid.config import ATTRIBUTES, GridCodecConfig, resolved_low_bits
from splatpack.codecs.grid.values import quantised_channels
from splatpack.compress.quantise import channel_step

__all__ = [
    "drop_bits",
    "drop_depths",
    "gaussian_drops",
    "join_low_bits",
    "low_bit_count",
    "pack_low_bits",
    "shared_drop_class",
    "unpack_low_bits",
]


def drop_bits(name: str, r: int) -> int:
    """The low bits an insensitive Gaussian drops of attribute ``name`` split at ``r``: all of a
    rotation's (its low bits are noise to any predictor), half of a position's (rounded up)."""
    return r if name == "quats" else (r + 1) // 2


def drop_depths(sensitivity: np.ndarray, fraction: float, depth: int) -> np.ndarray:
    """k [N] uint8: ``depth`` for the ``fraction`` of Gaussians with the smallest ``sensitivity``
    [N] (ties broken by index, so the result is deterministic), 0 for the others."""
    n = len(sensitivity)
    k = np.zeros(n, np.uint8)
    k[np.argsort(np.asarray(sensitivity, np.float64), kind="stable")[: int(round(fraction * n))]] = depth
    return k


def gaussian_drops(
    sensitivity: dict[str, np.ndarray], values: dict[str, np.ndarray], cfg: GridCodecConfig
) -> dict[str, np.ndarray]:
    """k [N] uint8 per attribute that drops low bits under ``cfg`` (``drop_fraction`` > 0, low
    bits split off): one class of Gaussians, shared by the attributes, drops :func:`drop_bits`
    of each. The class is the fraction ``drop_fraction`` whose drops add the least render MSE,
    Σ_a s_a,i · Δ̄_a² (4^{k_a} − 1)/12, with s_a,i the sensitivity and Δ̄_a² the mean squared
    step of attribute a (``values``: the coded values [N, C] the steps come from): the variance
    of an error uniform over 2^k steps instead of one. One class costs one plane (``grid.drop``)
    instead of one per attribute (measured in the README, "Seventh round"). What the encoder
    stores, and what quantisation-aware refinement renders
    (:func:`~splatpack.codecs.grid.qat.quantisation_aware`)."""
    depths = {}
    for name in ATTRIBUTES:
        coding = getattr(cfg, name)
        r = resolved_low_bits(name, coding, cfg)
        if r and name in sensitivity and name in values:
            depths[name] = drop_bits(name, r)
    if not cfg.drop_fraction or not depths:
        return {}
    cost = np.zeros(len(next(iter(values.values()))))
    for name, k in depths.items():
        t = quantised_channels(name, values[name], cfg)
        step = channel_step(t.min(0), t.max(0), getattr(cfg, name).bits)
        cost += np.asarray(sensitivity[name], np.float64) * float(np.mean(step**2)) * (4.0**k - 1) / 12
    cls = drop_depths(cost, cfg.drop_fraction, 1)
    return {name: cls * np.uint8(k) for name, k in depths.items()}


def shared_drop_class(drops: dict[str, np.ndarray]) -> np.ndarray | None:
    """c [N] uint8 (0 or 1) where every attribute's drops are c·k_a (one class, one depth per
    attribute: :func:`gaussian_drops`), coded once as ``grid.drop``; else None (a plane each)."""
    cls = None
    for k in drops.values():
        c = k > 0
        if cls is not None and not np.array_equal(c, cls):
            return None
        if c.any() and np.unique(k[c]).size != 1:
            return None
        cls = c
    return None if cls is None or not cls.any() else cls.astype(np.uint8)


def low_bit_count(drop: np.ndarray, r: int, channels: int) -> int:
    """Bits in the stream of ``channels`` channels, r low bits, ``drop`` [N] dropped per Gaussian."""
    return int(channels * (r * drop.size - int(drop.astype(np.int64).sum())))


def _kept_mask(drop: np.ndarray, r: int, channels: int) -> np.ndarray:
    """[N, C, r] bool: whether bit j (most significant first) of each low value is in the stream."""
    keep = np.arange(r)[None, :] < (r - drop.astype(np.int64))[:, None]  # [N, r]
    return np.broadcast_to(keep[:, None, :], (drop.size, channels, r))


def pack_low_bits(low: np.ndarray, drop: np.ndarray, r: int) -> np.ndarray:
    """The packed stream (uint8) of ``low`` [N, C] (r-bit values, rows in stream order), each
    row keeping its r − drop[i] most significant bits."""
    n, c = low.shape
    shifts = np.arange(r - 1, -1, -1)
    bits = ((low.astype(np.int64)[:, :, None] >> shifts) & 1).astype(np.uint8)  # [N, C, r]
    return np.packbits(bits[_kept_mask(drop, r, c)], bitorder="big")


def unpack_low_bits(packed: np.ndarray, drop: np.ndarray, r: int, channels: int) -> np.ndarray:
    """Inverse of :func:`pack_low_bits`: the kept bits as [N, C] values, dropped bits zero (the
    caller has checked that ``packed`` holds exactly :func:`low_bit_count` bits, padded)."""
    mask = _kept_mask(drop, r, channels)
    bits = np.zeros(mask.shape, np.uint8)
    bits[mask] = np.unpackbits(packed, bitorder="big", count=low_bit_count(drop, r, channels))
    weights = (1 << np.arange(r - 1, -1, -1)).astype(np.int64)
    return (bits.astype(np.int64) * weights).sum(2)


def join_low_bits(coarse: np.ndarray, kept: np.ndarray, drop: np.ndarray, r: int) -> np.ndarray:
    """q [N, C] int64 from the image's high bits, the stream's kept low bits (dropped ones zero)
    and the dropped count: (coarse << r) + kept + the middle of the dropped interval."""
    d = drop.astype(np.int64)[:, None]
    half = np.where(d > 0, np.left_shift(1, np.maximum(d - 1, 0)), 0)
    return (coarse.astype(np.int64) << r) + kept + half
