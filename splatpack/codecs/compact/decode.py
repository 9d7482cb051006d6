"""Decoding a compact scene: the file's sections back into streams (:func:`decode_compact`), every
problem one clear :class:`~splatpack.spk.SpkError`; the streams into a renderable scene
(:func:`dequantize`), a fixed function of them (bit-identical wherever it runs on CPU)."""

from __future__ import annotations

import math

import numpy as np
import torch

from splatpack.codecs.compact.config import FORMAT_KIND
from splatpack.codecs.compact.field import dequantize_field, implied_mlp_shapes
from splatpack.codecs.compact.positions import dequantize_positions, undelta_bytes
from splatpack.codecs.compact.scene import CompactScene
from splatpack.codecs.compact.schema import compact_layout, section_shapes
from splatpack.codecs.compact.streams import CompactCode
from splatpack.compress.rvq import ResidualVQ
from splatpack.spk.arrays import CodecError, decode_array
from splatpack.spk.container import SpkError, SpkReader

__all__ = ["decode_compact", "dequantize"]


def decode_compact(r: SpkReader) -> CompactCode:
    """Read a compact ``.spk`` back into its streams; every problem is one clear error."""
    path = r.path

    m = r.meta
    n = r.num_gaussians
    if m.get("kind") != FORMAT_KIND:
        raise SpkError(f"not a compact scene (kind {m.get('kind')!r})", path)

    layout = compact_layout(m, n, path)  # the whole header, before anything is read or built
    shapes = section_shapes(layout, r)

    def arr(name: str) -> np.ndarray:
        spec, shape = layout[name], shapes[name]
        try:
            payload = r.read(name)
            return decode_array(payload, spec.codec, name, shape=shape, dtype=spec.dtype)  # checked before decoding
        except CodecError as exc:
            raise SpkError(str(exc), path) from None

    planes = arr("positions")
    opac = arr("opacities")
    if opac.size and int(opac.max()) > (1 << m["opacity"]["bits"]) - 1:
        raise SpkError("section 'opacities' holds a value over the header's 'opacity.bits'", path)
    sidx, ridx = arr("scales.indices"), arr("rotations.indices")
    sb, rb = arr("scales.codebooks"), arr("rotations.codebooks")
    if (sidx.size and int(sidx.max()) >= sb.shape[1]) or (ridx.size and int(ridx.max()) >= rb.shape[1]):
        raise SpkError("an R-VQ index is out of its codebook", path)
    colour = m["colour"]
    hash_q = mlp = sh = None
    if colour["kind"] == "hash-grid-field":
        levels = [name for name in layout if name.startswith("colour.hash.")]
        hash_q = np.concatenate([arr(name).reshape(-1) for name in levels])
        mlp = _split_mlp(arr("colour.mlp"), implied_mlp_shapes(colour["config"]))
    else:
        sh = arr("colour.sh")
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
        views=arr("views") if "views" in shapes else None,
    )


def _split_mlp(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The MLP's arrays from its flat ``float16`` section (whose size the header check matched)."""
    out, o = [], 0
    for s in shapes:
        k = math.prod(s)
        out.append(flat[o : o + k].reshape(s))
        o += k
    return out


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
