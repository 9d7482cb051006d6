"""Self-Organizing Gaussians: a scene as smooth 2D attribute grids coded as images.

Morgenstern et al., "Compact 3D Scene Representation via Self-Organizing Gaussian Grids"
(ECCV 2024). The N Gaussians are placed on an H×W grid so that neighbouring cells hold similar
Gaussians (PLAS, :mod:`splatpack.compress.grid_sort`); each attribute is then quantised and laid
out as an H×W(×C) image, which an image codec (JPEG XL, PNG, WebP) predicts from its neighbours.

Pipeline (:func:`encode_grid_scene`), per attribute a with values x ∈ ℝ^{N×C}:

1. **transform** to the coded domain t = f_a(x) (:mod:`.values`): positions
   t = sign(x)·log1p(|x|) (or x itself where they are fixed point: ``means_transform``),
   log-scales, unit quaternions with w ≥ 0, opacity logits or α, SH as stored; with
   ``frames`` each Gaussian first in another of its equivalent local frames
   (:data:`~.config.FRAMES`, :mod:`splatpack.core.frames`; the quality levels code both
   |w|-largest and scale-ordered canonical frames and keep the smaller).
2. **sort** (SOG §3.2, :mod:`.sort`): PLAS on the normalised, weighted, activated attributes
   gives the grid index [H, W] (−1 = empty, fewer than W cells); the quality levels instead
   lay the positions' 3D Hilbert curve into the grid as a snake (``order="hilbert"``,
   :mod:`splatpack.compress.curve_order`), smaller and far faster on every scene measured, and
   code the positions as the gaps of their sorted curve keys instead of an image
   (``means_encoding="curve-keys"``, :mod:`.curve_keys`: the order then carries them).
3. **quantise** per channel over its range with b_a bits
   (:func:`splatpack.compress.quantise.quantise_channels`), so |t̂ − t| ≤ Δ_c/2 (plus float32
   rounding) for every lossless mode; values on a lattice that b_a bits hold are coded on it
   exactly.
4. **lay out** the integers as an image, empty cells copying their predecessor, several planes
   tiled into a mosaic (:mod:`.layout`); the low bits of positions, rotations (and, along the
   curve, scales) go beside the image in a packed stream, where one class of insensitive
   Gaussians (``drop_fraction``) drops some (:mod:`.lowbits`).
5. **code** each image with its codec (``jxl`` lossless or lossy, ``png``, ``webp``, or the
   container's ``ans`` as an order-0 baseline without spatial prediction). Lossy JPEG XL has no
   per-value bound (its errors are the DCT's); every other mode keeps the Δ/2 bound of step 3.

SH rest can instead be a **palette** or a **residual VQ** (``sh_mode``, :mod:`.palette`).
Which cells are empty is stored explicitly (``grid.empty``), so the decoder (:mod:`.decode`)
reads the occupied cells in raster order: **the decoded scene lists the Gaussians in the grid's
raster order**, not the input order. Quantisation-aware training renders what the file will
hold (:mod:`.qat`). Settings and the quality ladder: :mod:`.config`; the scene-codec seam:
:mod:`.codec`.

File layout: ``docs/spk-format.md``, section "Grid scenes".
"""

from splatpack.codecs.grid.codec import GRID_SCENE_CODEC, GridSceneCodec, read_grid_scene, write_grid_scene
from splatpack.codecs.grid.config import (
    ATTRIBUTES,
    DROP_FRACTION,
    FORMAT_KIND,
    FORMAT_VERSION,
    FRAMES,
    GRID_CODECS,
    MAX_SPARE,
    QUALITY_LEVELS,
    QUALITY_NAMES,
    SOG_LEVEL,
    AttributeCoding,
    GridCodecConfig,
)
from splatpack.codecs.grid.decode import decode_grid_scene
from splatpack.codecs.grid.encode import encode_grid_scene, grid_attribute_bytes
from splatpack.codecs.grid.qat import quantisation_aware, quantised_sh_rest
from splatpack.codecs.grid.sort import sort_features, sort_groups, sort_scene

__all__ = [
    "ATTRIBUTES",
    "DROP_FRACTION",
    "FORMAT_KIND",
    "FORMAT_VERSION",
    "FRAMES",
    "GRID_CODECS",
    "GRID_SCENE_CODEC",
    "MAX_SPARE",
    "QUALITY_LEVELS",
    "QUALITY_NAMES",
    "SOG_LEVEL",
    "AttributeCoding",
    "GridCodecConfig",
    "GridSceneCodec",
    "decode_grid_scene",
    "encode_grid_scene",
    "grid_attribute_bytes",
    "quantisation_aware",
    "quantised_sh_rest",
    "read_grid_scene",
    "sort_features",
    "sort_groups",
    "sort_scene",
    "write_grid_scene",
]
