"""Compact-3DGS (Lee et al., CVPR 2024) post-processing (§3.4) as a scene codec, with entropy coding.

A trained compact model (masked Gaussians, R-VQ geometry, hash-grid colour field) is turned into
integer streams once (:func:`quantize_compact`), and those streams are what the ``.spk`` file
stores losslessly (:func:`compact_sections` / :func:`read_compact`). Decoding is a fixed function
of the streams (:func:`dequantize`), so the model evaluated after training and the model decoded
from the file are the same arrays, bit for bit.

Streams (section names in the file):

* ``positions`` — each axis quantised to ``position_bits`` over the bounding box, the three
  integers interleaved into a Morton code, Gaussians sorted by it, and the code *differences*
  stored as little-endian bytes [N, ⌈3b/8⌉] coded by ANS with one model per byte plane (high
  planes are almost constant after sorting). Morton order also makes the Gaussians of one
  region neighbours in the file (:mod:`~splatpack.codecs.compact.positions`).
* ``opacities`` — α = σ(o) on ``opacity_bits`` (paper: 8), ANS.
* ``scales.indices`` / ``rotations.indices`` — R-VQ indices [N, S] (S = 6, K = 64), ANS with one
  model per stage; ``*.codebooks`` — the S×K codewords in float16. Scales are quantised in log
  space by default; rotations are sign-canonicalised (w ≥ 0) unit quaternions.
* ``colour.hash.LL`` — the hash-grid table, entries |v| < ``hash_prune`` (paper: 0.1) set to
  zero, the rest on a symmetric ``hash_bits`` grid (zero stays exactly zero, the most frequent
  symbol); one section per level ([T_l, F], ANS with one model per feature), because coarse
  levels are dense and fine ones almost all zero; ``colour.mlp`` — the MLP weights in float16
  (:mod:`~splatpack.codecs.compact.field`).
* ``colour.sh`` — instead of the field, per-Gaussian SH in float16 (``colour_field: false``).
* ``views`` — optional: the training cameras, for baking the field into SH
  (:func:`compact_to_gaussians`).

The paper's Huffman coding spends at least one bit per symbol; ANS with an adaptive (per-stream,
per-column) model codes the zero-dominated hash table at well under one bit per entry.

Modules: ``config`` (settings), ``positions`` (Morton codes), ``field`` (the colour field as
arrays), ``streams`` (:class:`CompactCode`, quantise, sections), ``schema`` (the header checked
whole, and the sections it implies), ``decode`` (file → streams → scene), ``scene``
(:class:`CompactScene`: render, cameras, bake), ``codec`` (the scene codec).
"""

from splatpack.codecs.compact.codec import COMPACT_SCENE_CODEC, CompactSceneCodec, read_compact, write_compact
from splatpack.codecs.compact.config import FORMAT_KIND, CompactCodecConfig
from splatpack.codecs.compact.decode import decode_compact, dequantize
from splatpack.codecs.compact.field import build_field, field_arrays, field_box_meta, hash_level_slices
from splatpack.codecs.compact.positions import (
    delta_bytes,
    morton_decode,
    morton_encode,
    quantize_positions,
    undelta_bytes,
)
from splatpack.codecs.compact.scene import (
    CompactScene,
    camera_center,
    compact_to_gaussians,
    field_colors,
    pack_views,
    render_compact,
    unpack_views,
)
from splatpack.codecs.compact.streams import CompactCode, compact_sections, quantize_compact

__all__ = [
    "COMPACT_SCENE_CODEC",
    "FORMAT_KIND",
    "CompactCode",
    "CompactCodecConfig",
    "CompactScene",
    "CompactSceneCodec",
    "build_field",
    "camera_center",
    "compact_sections",
    "compact_to_gaussians",
    "decode_compact",
    "delta_bytes",
    "dequantize",
    "field_arrays",
    "field_box_meta",
    "field_colors",
    "hash_level_slices",
    "morton_decode",
    "morton_encode",
    "pack_views",
    "quantize_compact",
    "quantize_positions",
    "read_compact",
    "render_compact",
    "undelta_bytes",
    "unpack_views",
    "write_compact",
]
