"""Decoding a compact scene: the file's sections back into streams (:func:`decode_compact`), every
problem one clear :class:`~splatpack.spk.SpkError`; the streams into a renderable scene
(:func:`dequantize`), a fixed function of them (bit-identical wherever it runs on CPU)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from splatpack.codecs.compact.config import FORMAT_KIND
from splatpack.codecs.compact.field import dequantize_field, hash_features, hash_level_slices
from splatpack.codecs.compact.positions import dequantize_positions, position_bytes, undelta_bytes
from splatpack.codecs.compact.scene import CompactScene
from splatpack.codecs.compact.streams import CompactCode
from splatpack.compress.rvq import ResidualVQ
from splatpack.spk.container import SpkError, SpkReader

__all__ = ["decode_compact", "dequantize"]


def decode_compact(r: SpkReader) -> CompactCode:
    """Read a compact ``.spk`` back into its streams; every problem is one clear error."""
    path = r.path

    m = r.meta
    n = r.num_gaussians
    if m.get("kind") != FORMAT_KIND:
        raise SpkError(f"not a compact scene (kind {m.get('kind')!r})", path)

    def arr(name: str, shape_check=None, per_gaussian: bool = True) -> np.ndarray:
        if not r.has(name):
            raise SpkError(f"section '{name}' is missing", path)
        a = r.read_array(name, max_elements=max(n, 1) * 64 if per_gaussian else None)
        if shape_check is not None and not shape_check(a):
            raise SpkError(f"section '{name}' has shape {a.shape}, which does not fit {n} Gaussians", path)
        return a

    try:
        bits = int(m["position"]["bits"])
        if not 1 <= bits <= 21:
            raise ValueError("position bits")
        nb = position_bytes(bits)
        planes = arr("positions", lambda a: a.ndim == 2 and a.shape == (n, nb) and a.dtype == np.uint8)
        opac = arr("opacities", lambda a: a.ndim == 1 and a.shape[0] == n)
        sidx = arr("scales.indices", lambda a: a.ndim == 2 and a.shape[0] == n)
        ridx = arr("rotations.indices", lambda a: a.ndim == 2 and a.shape[0] == n)
        sb = arr("scales.codebooks", lambda a: a.ndim == 3 and a.shape[2] == 3 and a.shape[0] == sidx.shape[1], False)
        rb = arr(
            "rotations.codebooks", lambda a: a.ndim == 3 and a.shape[2] == 4 and a.shape[0] == ridx.shape[1], False
        )
        if (sidx.size and int(sidx.max()) >= sb.shape[1]) or (ridx.size and int(ridx.max()) >= rb.shape[1]):
            raise SpkError("an R-VQ index is out of its codebook", path)
        colour = m["colour"]
        hash_q = mlp = sh = None
        if colour["kind"] == "hash-grid-field":
            hash_q, mlp = _read_field(arr, colour, path)
        elif colour["kind"] == "sh":
            sh = arr("colour.sh", lambda a: a.ndim == 3 and a.shape[0] == n and a.shape[2] == 3)
        else:
            raise SpkError(f"unknown colour kind {colour['kind']!r}", path)
        views = None
        if r.has("views"):
            views = arr("views", lambda a: a.ndim == 2 and a.shape[1] == 27 and a.dtype == np.float32, False)
    except (KeyError, TypeError, ValueError) as e:
        raise SpkError(f"malformed compact-scene header ({type(e).__name__}: {e})", path) from None
    return CompactCode(
        morton=undelta_bytes(planes),
        opacity_q=opac,
        scale_idx=sidx,
        rot_idx=ridx,
        scale_books=sb,
        rot_books=rb,
        hash_q=hash_q,
        mlp=mlp,
        sh=sh,
        meta=m,
        views=views,
    )


def _read_field(arr, colour: dict[str, Any], path) -> tuple[np.ndarray, list[np.ndarray]]:
    """(flat hash table, MLP arrays) of a colour field, through ``arr`` (a checked section read)."""
    f = hash_features(colour)
    parts = []
    for lvl, (a0, b0) in enumerate(hash_level_slices(colour)):
        shape = ((b0 - a0) // f, f)
        parts.append(arr(f"colour.hash.{lvl:02d}", lambda a, shape=shape: a.shape == shape, False))
    hash_q = np.concatenate([p.reshape(-1) for p in parts])
    flat = arr("colour.mlp", lambda a: a.ndim == 1 and a.dtype == np.float16, False)
    shapes = [tuple(int(d) for d in s) for s in colour["mlp_shapes"]]
    sizes = [int(np.prod(s)) for s in shapes]
    if sum(sizes) != flat.size:
        raise SpkError("section 'colour.mlp' does not match the MLP shapes in the header", path)
    mlp, o = [], 0
    for s, k in zip(shapes, sizes):
        mlp.append(flat[o : o + k].reshape(s))
        o += k
    return hash_q, mlp


def dequantize(code: CompactCode) -> CompactScene:
    """The decoder: a fixed function of the stored streams (bit-identical wherever it runs on CPU)."""
    m = code.meta
    means = torch.from_numpy(dequantize_positions(code.morton, m["position"]))
    op_levels = np.float32((1 << int(m["opacity"]["bits"])) - 1)
    opac = torch.from_numpy(code.opacity_q.astype(np.float32) / op_levels)
    sbooks = torch.from_numpy(code.scale_books.astype(np.float32))
    rbooks = torch.from_numpy(code.rot_books.astype(np.float32))
    s = ResidualVQ.decode(torch.from_numpy(code.scale_idx.astype(np.int64)), sbooks)
    scales = torch.exp(s) if m.get("scale_space", "log") == "log" else s
    quats = ResidualVQ.decode(torch.from_numpy(code.rot_idx.astype(np.int64)), rbooks)
    colour = m["colour"]
    field = sh = None
    if colour["kind"] == "hash-grid-field":
        field = dequantize_field(colour, code.hash_q, code.mlp)
    else:
        sh = torch.from_numpy(code.sh.astype(np.float32))
    return CompactScene(
        means=means, quats=quats, scales=scales, opacities=opac, field=field, sh=sh, meta=m, views=code.views
    )
