"""The grid-scene decoder: an open grid ``.spk`` → a :class:`~splatpack.core.GaussianSet`, the
Gaussians in the grid's raster order (the occupied cells, read in raster order).

Every value of the meta is checked before it sizes anything (:func:`checked_int`,
:func:`checked_range`), each section's shape and dtype against the header, and each decoded
integer against its bits; every problem raises one :class:`~splatpack.spk.SpkError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from splatpack.codecs.grid.basis import MAX_BASIS_RANK, basis_values
from splatpack.codecs.grid.config import (
    ALPHA_EPS,
    ATTRIBUTES,
    FORMAT_KIND,
    FORMAT_VERSION,
    GRID_CODECS,
    MAX_RVQ_STAGES,
    MAX_SPARE,
    OPACITY_SPACES,
    valid_distance,
)
from splatpack.codecs.grid.curve_keys import keys_from_streams, rest_bit_count
from splatpack.codecs.grid.layout import ImageLayout, packed_rows
from splatpack.codecs.grid.lowbits import join_low_bits, low_bit_count, unpack_low_bits
from splatpack.codecs.grid.palette import label_bits
from splatpack.compress.curve_order import hilbert_point, snake_cells
from splatpack.compress.quantise import dequantise_channels, from_smallest_three, signed_expm1
from splatpack.core import GaussianSet
from splatpack.spk.arrays import CodecError, decode_array
from splatpack.spk.container import SpkError

__all__ = ["checked_int", "checked_range", "decode_grid_scene"]


def checked_int(v, lo: int, hi: int, what: str) -> int:
    """``v`` if it is an integer in lo..hi, else a :class:`ValueError` naming ``what``."""
    if type(v) is not int or not lo <= v <= hi:
        raise ValueError(f"{what} must be an integer in {lo}..{hi}, not {v!r}")
    return v


def checked_range(entry: dict, c: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(lo [c], hi [c]) float32 of a meta entry: c finite numbers each, lo ≤ hi (else ValueError)."""
    lo, hi = entry["lo"], entry["hi"]
    if not (isinstance(lo, list) and isinstance(hi, list) and len(lo) == len(hi) == c):
        raise ValueError(f"{what} needs {c} lo/hi values")
    if not all(type(v) in (int, float) for v in lo + hi):
        raise ValueError(f"{what} lo/hi are not numbers")
    with np.errstate(over="ignore"):
        lo32, hi32 = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    if not (np.isfinite(lo32).all() and np.isfinite(hi32).all() and (lo32 <= hi32).all()):
        raise ValueError(f"{what} has an invalid range")
    return lo32, hi32


def _section(r, name: str, codec: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Section ``name`` of reader ``r``, checked to be coded with ``codec`` as an array of ``shape``, ``dtype``."""
    if not r.has(name):
        raise SpkError(f"section '{name}' is missing", r.path)
    if r.info(name).codec != codec:
        raise SpkError(f"section '{name}' uses codec '{r.info(name).codec}', the header says '{codec}'", r.path)
    payload = r.read(name)
    try:
        if codec == "ans":
            flat = (shape[0] * shape[1], math.prod(shape[2:]))
            return decode_array(payload, "ans", name, math.prod(shape), shape=flat, dtype=dtype).reshape(shape)
        return decode_array(payload, codec, name, math.prod(shape), shape=shape, dtype=dtype)
    except CodecError as exc:
        raise SpkError(str(exc), r.path) from None


@dataclass(frozen=True)
class _Grid:
    """An open grid scene's reader and the grid its sections lie on (``occupied`` [H*W])."""

    reader: Any
    height: int
    width: int
    occupied: np.ndarray

    def error(self, message: str) -> SpkError:
        return SpkError(message, self.reader.path)

    def planes(self, name: str, layout: ImageLayout, p: int, gh: int, gw: int, c: int) -> np.ndarray:
        """Section ``name`` as [P, gh, gw, c] planes (see :class:`ImageLayout`)."""
        img = _section(self.reader, name, layout.codec, layout.image_shape(p, gh, gw, c), layout.dtype)
        return layout.from_image(img, p, gh, gw, c)

    def cells(self, name: str, layout: ImageLayout, p: int, c: int) -> np.ndarray:
        """The occupied cells of a grid section of P planes of c channels, [N, P·c] in raster order."""
        h, w = self.height, self.width
        return self.planes(name, layout, p, h, w, c).transpose(1, 2, 0, 3).reshape(h * w, p * c)[self.occupied]


def _decode_palette(g: _Grid, e: dict, codec: str, distance: float, n: int, channels: int, k_rest: int) -> np.ndarray:
    """The SH rest [N, 3(K−1)] of a palette: each cell's label into the dequantised centroids."""
    k = checked_int(e["size"], 1, min(n, 1 << 16), "palette size")
    lbits = checked_int(e["label_bits"], label_bits(k), label_bits(k), "label bits")
    bits = checked_int(e["bits"], 1, 16, "palette bits")
    lo, hi = checked_range(e, channels, "shN")
    labels = g.cells("grid.shN.labels", ImageLayout(codec, lbits, distance), 1, 1)[:, 0]
    if labels.size and int(labels.max()) >= k:
        raise g.error("section 'grid.shN.labels' has a label outside the palette")
    cq = g.planes("grid.shN.centroids", ImageLayout(codec, bits, distance), 1, k, k_rest, 3).reshape(k, channels)
    if int(cq.max()) >> bits:
        raise g.error(f"section 'grid.shN.centroids' has values over {bits} bits")
    return dequantise_channels(cq, lo, hi, bits)[labels.astype(np.int64)]


def _decode_residual_palette(g: _Grid, e: dict, codec: str, distance: float, n: int, channels: int, k_rest: int):
    """The SH rest [N, 3(K−1)] of a residual VQ: Σ_s Ĉ_s[k_s], summed in float32 in stage order."""
    stages = checked_int(e["stages"], 1, MAX_RVQ_STAGES, "R-VQ stages")
    k = checked_int(e["size"], 1, min(n, 1 << 16), "R-VQ codebook size")
    lbits = checked_int(e["label_bits"], label_bits(k), label_bits(k), "label bits")
    bits = checked_int(e["bits"], 1, 16, "R-VQ codebook bits")
    lo, hi = checked_range(e, stages * channels, "shN")
    labels = g.cells("grid.shN.labels", ImageLayout(codec, lbits, distance), stages, 1).astype(np.int64)
    if labels.size and int(labels.max()) >= k:
        raise g.error("section 'grid.shN.labels' has a label outside the codebook")
    cq = g.planes("grid.shN.centroids", ImageLayout(codec, bits, distance), 1, stages * k, k_rest, 3)
    cq = cq.reshape(stages, k, channels)
    if int(cq.max()) >> bits:
        raise g.error(f"section 'grid.shN.centroids' has values over {bits} bits")
    lo, hi = lo.reshape(stages, channels), hi.reshape(stages, channels)
    v = np.zeros((labels.shape[0], channels), np.float32)
    for s_ in range(stages):
        v += dequantise_channels(cq[s_], lo[s_], hi[s_], bits)[labels[:, s_]]
    return v


def _decode_sh_basis(g: _Grid, e: dict, codec: str, distance: float, channels: int) -> np.ndarray:
    """The SH rest [N, 3(K−1)] of a low-rank generator: r coefficient planes and the basis table
    (with ``zero`` > 0: zero where the mask ``grid.shN.zero`` says, the coefficients of the rest)."""
    r = checked_int(e["rank"], 1, min(channels, MAX_BASIS_RANK), "SH basis rank")
    bits = checked_int(e["bits"], 1, 16, "shN bits")
    lo, hi = checked_range(e, r, "shN")
    n = int(g.occupied.sum())
    zeros = checked_int(e.get("zero", 0), 0, max(n - 1, 0), "zeroed SH rests")
    layout = ImageLayout(codec, bits, distance)
    if zeros:  # a bit mask of the zeroed, then the others' coefficients packed row-major
        packed = _section(g.reader, "grid.shN.zero", "deflate", ((n + 7) // 8,), np.dtype(np.uint8))
        zero = np.unpackbits(packed, count=n).astype(bool)
        if int(zero.sum()) != zeros:
            raise g.error(f"section 'grid.shN.zero' marks {int(zero.sum())} SH rests, not {zeros} (corrupt)")
        rows = packed_rows(n - zeros, g.width)
        q = g.planes("grid.shN.coefs", layout, r, rows, g.width, 1).transpose(1, 2, 0, 3).reshape(-1, r)[: n - zeros]
    else:
        q = g.cells("grid.shN.coefs", layout, r, 1)
    if int(q.max(initial=0)) >> bits:
        raise g.error(f"section 'grid.shN.coefs' has values over {bits} bits (corrupt)")
    table = _section(g.reader, "grid.shN.basis", "deflate", (1 + r, channels), np.dtype(np.float32))
    if not np.isfinite(table).all():
        raise g.error("section 'grid.shN.basis' holds non-finite values (corrupt)")
    values = basis_values(q, lo, hi, bits, table)
    if not zeros:
        return values
    out = np.zeros((n, channels), np.float32)
    out[~zero] = values
    return out


def _decode_smallest_three(g: _Grid, e: dict, codec: str, distance: float) -> np.ndarray:
    """Quaternions [N, 4] from the three smallest components and the index of the largest."""
    bits = checked_int(e["bits"], 2, 16, "quats bits")
    lo, hi = checked_range(e, 3, "quats")
    r = checked_int(e.get("low_bits", 0), 0, bits - 2, "quats low bits")
    q = g.cells("grid.quats", ImageLayout(codec, bits - r, distance), 1, 4)
    if int(q[:, :3].max()) >> (bits - r) or (q[:, 3] > 3).any():
        raise g.error("section 'grid.quats' has values over its bits or an index over 3 (corrupt)")
    small = _with_low_bits(g, "quats", e, q[:, :3], r, codec)
    return from_smallest_three(dequantise_channels(small, lo, hi, bits), q[:, 3].astype(np.int64))


def _decode_curve_keys(g: _Grid, e: dict, codec: str, distance: float, n: int) -> np.ndarray:
    """Positions [N, 3] from the gaps of their high bits' Hilbert keys (:mod:`.curve_keys`): the
    k-th key is the Gaussian in the snake's k-th cell, then the low-bit stream as for an image."""
    bits = checked_int(e["bits"], 1, 16, "means bits")
    lo, hi = checked_range(e, 3, "means")
    r = checked_int(e.get("low_bits", 0), 0, bits - 1, "means low bits")
    if distance:
        raise ValueError("curve-keys positions are lossless (distance 0)")
    snake = snake_cells(g.height, g.width)
    if not g.occupied[snake[:n]].all():
        raise g.error("curve-keys positions need the empty cells at the end of the snake (section 'grid.empty')")
    lengths = _section(g.reader, "grid.means.lengths", "ans", (n, 1), np.dtype(np.uint8))[:, 0]
    if int(lengths.max()) > 3 * (bits - r):
        raise g.error(f"section 'grid.means.lengths' has a gap of more than {3 * (bits - r)} bits (corrupt)")
    count = rest_bit_count(lengths)
    packed = _section(g.reader, "grid.means.rest", "raw", ((count + 7) // 8,), np.dtype(np.uint8))
    try:
        keys = keys_from_streams(lengths, packed, 3 * (bits - r))
    except ValueError as exc:
        raise g.error(f"sections 'grid.means.lengths' and 'grid.means.rest' are corrupt ({exc})") from None
    # the decoder lists the occupied cells in raster order; the snake is its own inverse
    high = hilbert_point(keys, bits - r)[snake[np.flatnonzero(g.occupied)]]
    return dequantise_channels(_with_low_bits(g, "means", e, high, r, codec), lo, hi, bits)


def _decode_channels(g: _Grid, name: str, e: dict, codec: str, distance: float, channels: int) -> np.ndarray:
    """An attribute grid [N, C] of per-channel quantised values (SH rest as (K−1) RGB planes)."""
    bits = checked_int(e["bits"], 1, 16, f"{name} bits")
    lo, hi = checked_range(e, channels, name)
    r = checked_int(e.get("low_bits", 0), 0, bits - 1, f"{name} low bits")
    c = 3 if name == "shN" else channels
    q = g.cells(f"grid.{name}", ImageLayout(codec, bits - r, distance), channels // c, c)
    if int(q.max()) >> (bits - r):
        raise g.error(f"section 'grid.{name}' has values over {bits - r} bits (corrupt)")
    return dequantise_channels(_with_low_bits(g, name, e, q, r, codec), lo, hi, bits)


def _with_low_bits(g: _Grid, name: str, e: dict, high: np.ndarray, r: int, codec: str) -> np.ndarray:
    """The quantised values [N, C] from the image's ``high`` bits and, when ``r`` > 0, the low-bit
    stream ``grid.<name>.low`` and the dropped bits: ``grid.<name>.drop`` (meta ``drop: true``) or
    the scene's class ``grid.drop`` times the meta's ``drop: k`` (:mod:`.lowbits`)."""
    if r == 0:
        if "drop" in e:
            raise ValueError(f"{name} drop without low bits")
        return high
    n, c = high.shape
    d = e.get("drop")
    if "drop" not in e:
        drop = np.zeros(n, np.uint16)
    elif d is True:
        drop = g.cells(f"grid.{name}.drop", ImageLayout(codec, r.bit_length()), 1, 1)[:, 0]
        if (drop > r).any():
            raise g.error(f"section 'grid.{name}.drop' drops more than the {r} low bits")
    elif type(d) is int:  # one class for the scene (grid.drop), this attribute's depth for it
        depth = checked_int(d, 1, r, f"{name} drop")
        drop = g.cells("grid.drop", ImageLayout("ans", 1), 1, 1)[:, 0]
        if (drop > 1).any():
            raise g.error("section 'grid.drop' has a class other than 0 and 1 (corrupt)")
        drop = drop * np.uint16(depth)
    else:
        raise ValueError(f"{name} drop must be true or a bit count when present")
    count = low_bit_count(drop, r, c)
    packed = _section(g.reader, f"grid.{name}.low", "raw", ((count + 7) // 8,), np.dtype(np.uint8))
    if count % 8 and int(packed[-1]) & ((1 << (8 - count % 8)) - 1):
        raise g.error(f"section 'grid.{name}.low' has non-zero padding bits (corrupt)")
    return join_low_bits(high, unpack_low_bits(packed, drop, r, c), drop, r)


def _decode_attribute(g: _Grid, name: str, e: dict, n: int, channels: int, k_rest: int) -> np.ndarray:
    """Attribute ``name`` [N, channels] in its coded domain, from its meta entry ``e``."""
    codec, distance = e["codec"], e["distance"]
    if codec not in GRID_CODECS:
        raise ValueError(f"{name} codec {codec!r}")
    if not valid_distance(codec, distance):
        raise ValueError(f"{name} distance {distance!r}")
    if e.get("low_bits", 0) and (distance or (name == "shN" and e.get("mode") != "grid")):
        raise ValueError(f"{name} low bits need a lossless grid of values")
    if name == "shN" and e.get("mode") == "palette":
        return _decode_palette(g, e, codec, distance, n, channels, k_rest)
    if name == "shN" and e.get("mode") == "rvq":
        return _decode_residual_palette(g, e, codec, distance, n, channels, k_rest)
    if name == "shN" and e.get("mode") == "basis":
        return _decode_sh_basis(g, e, codec, distance, channels)
    if name == "shN" and e.get("mode") != "grid":
        raise ValueError("unknown shN mode")
    if name == "means" and e.get("encoding", "grid") == "curve-keys":
        return _decode_curve_keys(g, e, codec, distance, n)
    if name == "means" and e.get("encoding", "grid") != "grid":
        raise ValueError("unknown means encoding")
    if name == "quats" and e.get("encoding", "components") == "smallest-three":
        return _decode_smallest_three(g, e, codec, distance)
    if name == "quats" and e.get("encoding", "components") != "components":
        raise ValueError("unknown quats encoding")
    return _decode_channels(g, name, e, codec, distance, channels)


def _grid_shape(m: dict, n: int) -> tuple[int, int]:
    """(height, width) of the meta's grid, checked to fit the n Gaussians."""
    h = checked_int(m["grid"]["height"], 1, 2 * n + MAX_SPARE, "grid height")
    w = checked_int(m["grid"]["width"], 1, 2 * n + MAX_SPARE, "grid width")
    if not n <= h * w <= 2 * n + MAX_SPARE or n == 0:
        raise ValueError(f"a {h}x{w} grid does not fit {n} Gaussians")
    return h, w


def _occupied(r, h: int, w: int, n: int) -> np.ndarray:
    """[H*W] whether each cell holds a Gaussian, from the section ``grid.empty`` (sorted cells)."""
    n_empty = h * w - n
    empty = _section(r, "grid.empty", "deflate", (n_empty,), np.dtype(np.uint32)).astype(np.int64)
    if n_empty and (empty[0] < 0 or empty[-1] >= h * w or (np.diff(empty) <= 0).any()):
        raise SpkError("section 'grid.empty' is not a strictly increasing list of cells", r.path)
    occ = np.ones(h * w, bool)
    occ[empty] = False
    return occ


def decode_grid_scene(r) -> GaussianSet:
    """Read a grid ``.spk`` back into a :class:`~splatpack.core.GaussianSet` (Gaussians in the
    grid's raster order). Every problem (corrupt or truncated file, a section whose shape or
    dtype disagrees with the header, malformed meta) raises one :class:`SpkError`."""
    m, n = r.meta, r.num_gaussians
    if m.get("kind") != FORMAT_KIND:
        raise SpkError(f"not a grid scene (kind {m.get('kind')!r}, expected {FORMAT_KIND!r})", r.path)
    try:
        if checked_int(m.get("version"), 1, 1, "version") != FORMAT_VERSION:
            raise ValueError("version")
        h, w = _grid_shape(m, n)
        degree = checked_int(m["sh_degree"], 0, 3, "sh_degree")
        if m["means_transform"] not in ("signed-log1p", "linear") or m["opacity_space"] not in OPACITY_SPACES:
            raise ValueError("unknown transform")
        attrs = m["attributes"]
        if not isinstance(attrs, dict):
            raise ValueError("attributes is not an object")
        g = _Grid(r, h, w, _occupied(r, h, w, n))
        k_rest = (degree + 1) ** 2 - 1
        out: dict[str, np.ndarray] = {}
        for name in ATTRIBUTES:
            channels = {"means": 3, "sh0": 3, "shN": 3 * k_rest, "scales": 3, "quats": 4, "opacities": 1}[name]
            if channels == 0:
                if name in attrs:
                    raise ValueError("shN present for SH degree 0")
                continue
            out[name] = _decode_attribute(g, name, attrs[name], n, channels, k_rest)
        opacity_space, linear = m["opacity_space"], m["means_transform"] == "linear"
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise SpkError(f"malformed grid-scene header ({type(exc).__name__}: {exc})", r.path) from None
    return _gaussians(out, opacity_space, n, k_rest, r.path, linear)


def _gaussians(out: dict[str, np.ndarray], opacity_space: str, n: int, k_rest: int, path, linear=False) -> GaussianSet:
    """The decoded attributes, out of their coded domains, as Gaussians (non-finite ones refused)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out["means"] = (out["means"] if linear else signed_expm1(out["means"])).astype(np.float32)
        opac = out["opacities"][:, 0]
        if opacity_space == "alpha":
            a = np.clip(opac, np.float32(ALPHA_EPS), np.float32(1 - ALPHA_EPS))
            opac = np.log(a) - np.log1p(-a)
        for name, v in out.items():  # a forged range can overflow float32
            if not np.isfinite(v).all():
                raise SpkError(f"'{name}' decodes to non-finite values (corrupt range in the header)", path)
    shn = out["shN"].reshape(n, k_rest, 3) if k_rest else np.zeros((n, 0, 3), np.float32)
    return GaussianSet(
        means=torch.from_numpy(out["means"]),
        quats=torch.from_numpy(out["quats"]),
        scales=torch.from_numpy(out["scales"]),
        opacities=torch.from_numpy(opac.astype(np.float32)),
        sh0=torch.from_numpy(out["sh0"].reshape(n, 1, 3)),
        shN=torch.from_numpy(np.ascontiguousarray(shn, np.float32)),
    )
