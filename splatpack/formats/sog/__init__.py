"""PlayCanvas SOG, read (versions 1 and 2) and write (version 2): a ``.sog`` zip or a folder of ``meta.json`` + WebP.

Spec: playcanvas/splat-transform ``src/lib/writers/write-sog.ts`` and
``src/lib/readers/read-sog.ts``. Every image is ``W × H`` RGBA with ``W = ceil(√N / 4)·4`` and
``H = ceil(N / W / 4)·4``, Gaussian ``i`` at pixel ``i`` (row-major):

=====================  ======================================================================
``means_l/means_u``    16-bit ``round(65535·(v − min)/(max − min))`` of ``v = sign(x)·ln(1+|x|)``
                       per axis, low byte in ``means_l``, high byte in ``means_u``; ``mins`` and
                       ``maxs`` in ``meta.means``
``quats``              smallest three: the unit quaternion ``(w, x, y, z)`` with its largest
                       component made positive, the other three as ``255·(q·√2·0.5 + 0.5)`` in
                       RGB and ``252 + index of the largest`` in A
``scales``             RGB = labels into ``meta.scales.codebook`` (256 log-scales)
``sh0``                RGB = labels into ``meta.sh0.codebook`` (256 SH DC values), A =
                       ``sigmoid(opacity)·255``
``shN_labels``         (optional) 16-bit palette index in R (low) and G (high)
``shN_centroids``      (optional) ``64·D × ceil(count/64)``: palette entry ``p``, coefficient
                       ``j`` at pixel ``(p mod 64)·D + j`` of row ``p div 64``, RGB = labels
                       into ``meta.shN.codebook`` (256 values); ``D = 3, 8, 15`` for ``bands``
=====================  ======================================================================

The writer orders the Gaussians along a Morton curve (as splat-transform does; see
:func:`~.textures.morton_order`), builds the 256-entry codebooks by 1-D k-means (Lloyd from a companding
start that keeps the minimum and maximum; exact when a stream has ≤ 256 distinct values) and
the SH palette by k-means on the ``3·D``-vectors (``min(64, 2^⌊log2(N/1024)⌋)·1024`` entries
as splat-transform, at most ``N``; exact when there are no more distinct vectors), and writes
lossless WebP (libwebp through imagecodecs, which keeps RGB under zero alpha). A reader
returns the Gaussians in file order.

Reading checks ``meta.json`` (types, lengths, finite numbers, plain file names), refuses a
count that no WebP image can hold (16384² pixels), above the Gaussian ceiling or above what the
stored images can hold (:mod:`splatpack.core.limits`) before reading any image, reads each image
with a byte limit and checks its size from the WebP header against the count *before*
decoding it. Errors are :class:`~splatpack.core.errors.SplatpackError`.
"""

from __future__ import annotations

from pathlib import Path

from splatpack.formats.base import SceneFormat
from splatpack.formats.sog.read import load_sog
from splatpack.formats.sog.textures import morton_order, sh_palette_size, texture_size, webp_size
from splatpack.formats.sog.write import encode_sog, save_sog

__all__ = [
    "FORMAT",
    "encode_sog",
    "load_sog",
    "morton_order",
    "save_sog",
    "sh_palette_size",
    "texture_size",
    "webp_size",
]


def _sniff(head: bytes, path: Path) -> bool:
    if path.is_dir():
        return (path / "meta.json").is_file()
    return head[:4] == b"PK\x03\x04" or path.suffix.lower() == ".json"


FORMAT = SceneFormat(name="sog", extensions=(".sog", ".json"), sniff=_sniff, read=load_sog, write=save_sog)
