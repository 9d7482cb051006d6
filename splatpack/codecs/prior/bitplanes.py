"""Mode b of the learned coding: a grid scene's quantised attribute images coded as bit-planes
under a bit model (:mod:`splatpack.generative.entropy`), lossless with respect to the grid
codec's values, so the decoded Gaussians (and renders) are the grid codec's exactly.

Encoding (:func:`encode_bitplanes`) starts from the grid codec's own sections: the images of the
model's layout (:mod:`.planes`) become bits [K, H, W]; a first pass measures each plane's code
length under the model (or its order-0 fallback); every section whose planes would cost no less
than the grid codec's own coding (its payload, or the same image as order-0 ``ans`` where that
is smaller) keeps that coding (per-section fallback), and its planes are then known to the model
(another pass re-checks the rest under that context, until no section falls back); the rest are coded in one ANS stream (section ``prior.bits``, u32
words). Sections outside the layout (the empty-cell list, the SH rest) are kept as they are.
Decoding (:func:`decode_bitplanes`) reverses it and hands the images back as the grid codec's
sections, which :func:`splatpack.codecs.grid.decode_grid_scene` then reads as usual.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from splatpack.codecs.grid.layout import ImageLayout
from splatpack.codecs.prior.modelfile import LoadedCodingModel
from splatpack.codecs.prior.planes import from_planes, grid_images, own_coding, plane_units, section_image, to_planes
from splatpack.core.errors import SplatpackError
from splatpack.generative.entropy import STATIC_COST_BITS, bernoulli_bits, choose_fallback, decode_planes, encode_planes
from splatpack.generative.entropy import static_probability as _static_p
from splatpack.spk.arrays import decode_array, encode_array
from splatpack.spk.container import Section

__all__ = ["BITS_SECTION", "BitplaneStats", "decode_bitplanes", "encode_bitplanes"]

BITS_SECTION = "prior.bits"


@dataclass
class BitplaneStats:
    """What one encoding measured: the model stream's cross-entropy (bits) and bytes, the
    fallback sections and their bytes, the order-0 planes, and seconds spent."""

    cross_entropy_bits: float = 0.0
    stream_bytes: int = 0
    fallback: list[str] = field(default_factory=list)
    fallback_bytes: int = 0
    static_planes: int = 0
    seconds: float = 0.0
    passes: int = 1
    #: the first pass (every plane under the model or its order-0 p̂, no section fallback):
    #: stream bytes, cross-entropy in bits, and per section its planes' cost in bits
    model_only_bytes: int = 0
    model_only_static_bytes: int = 0
    model_only_cross_entropy_bits: float = 0.0
    model_only_section_bits: dict[str, float] = field(default_factory=dict)


def _static_table(static: dict[int, int]) -> dict[str, int]:
    """The order-0 planes as the meta stores them (plane index as a string → quantised p̂)."""
    return {str(k): int(v) for k, v in sorted(static.items())}


def _plane_costs(bits: np.ndarray, model_bits: np.ndarray) -> np.ndarray:
    """Per plane: the smaller of the model's and the order-0 code (bits), as the coder chooses."""
    static = np.array([bernoulli_bits(b, _static_p(b)) + STATIC_COST_BITS for b in bits])
    return np.minimum(model_bits, static)


def encode_bitplanes(
    sections: list[Section], meta: dict[str, Any], loaded: LoadedCodingModel
) -> tuple[list[Section], dict[str, Any], dict[str, Any], BitplaneStats]:
    """The grid codec's (sections, meta) → (sections with the layout's images replaced by the
    bit-model stream where that is smaller, the grid meta (a fallback section's codec may now
    be ``ans``), the ``prior`` meta entry, stats)."""
    start = time.time()
    images = grid_images(sections, meta, loaded.layout)
    if images is None:
        raise SplatpackError(
            f"the bit-plane model '{loaded.name}' codes grids of {loaded.card.get('grid_codec', 'another layout')}"
        )
    bits = to_planes(images, loaded.layout)
    units = plane_units(loaded.layout)
    own = own_coding(sections, images, loaded.layout)
    own_bytes = {u: len(own[u].payload) for u in units}
    coded, passes = encode_planes(loaded.model, bits), 1
    first = coded
    fallback: list[str] = []
    known = np.zeros(len(bits), bool)
    while True:  # planes made known change the model's code of the rest: re-check until none falls back
        more = choose_fallback(
            _plane_costs(bits, coded.model_bits), {u: units[u] for u in units if u not in fallback}, own_bytes
        )
        if not more:
            break
        fallback = [u for u in units if u in fallback or u in more]
        for u in more:
            known[units[u]] = True
        coded, passes = encode_planes(loaded.model, bits, known), passes + 1
    stats = BitplaneStats(
        cross_entropy_bits=coded.coded_bits,
        stream_bytes=len(coded.words),
        fallback=list(fallback),
        fallback_bytes=sum(own_bytes[u] for u in fallback),
        static_planes=len(coded.static),
        passes=passes,
        model_only_bytes=len(first.words),
        model_only_static_bytes=len(json.dumps(_static_table(first.static))),
        model_only_cross_entropy_bits=first.coded_bits,
        model_only_section_bits={u: float(_plane_costs(bits, first.model_bits)[p].sum()) for u, p in units.items()},
    )
    out = [own[s.name] if s.name in fallback else s for s in sections if s.name not in units or s.name in fallback]
    words = np.frombuffer(coded.words, "<u4").astype(np.uint32)
    out.append(Section(BITS_SECTION, "raw", encode_array(words, "raw")))
    attrs = dict(meta["attributes"])
    for u in fallback:
        key = u.split(".", 1)[1]
        attrs[key] = {**attrs[key], "codec": own[u].codec}
    entry = {
        "mode": "bitplanes",
        "model": loaded.name,
        "sha256": loaded.sha256,
        "version": loaded.version,
        "fallback": list(fallback),
        "static": _static_table(coded.static),
    }
    stats.seconds = time.time() - start
    return out, {**meta, "attributes": attrs}, entry, stats


def decode_bitplanes(get, meta: dict[str, Any], entry: dict[str, Any], loaded: LoadedCodingModel) -> dict[str, Section]:
    """The layout's sections, as the grid codec would read them (``ans``-coded images), from a
    file's ``prior`` meta ``entry``: ``get(name)`` returns a stored section. ``meta``'s grid
    shape must already be checked. Raises :class:`SplatpackError` for anything inconsistent."""
    units = plane_units(loaded.layout)
    fallback = entry["fallback"]
    if not isinstance(fallback, list) or not set(fallback) <= set(units) or len(set(fallback)) != len(fallback):
        raise SplatpackError("prior meta: invalid fallback list")
    static = entry["static"]
    if not isinstance(static, dict) or not all(isinstance(k, str) and k.isdigit() for k in static):
        raise SplatpackError("prior meta: invalid static plane table")
    if not all(type(v) is int for v in static.values()):
        raise SplatpackError("prior meta: invalid static plane table")
    h, w = meta["grid"]["height"], meta["grid"]["width"]
    chans = {ch.section: ch for ch in loaded.layout}
    known = np.zeros(sum(ch.bits for ch in loaded.layout), bool)
    images = {}
    for name, ch in chans.items():
        if name in fallback:
            img = section_image(get(name), ch.stored_bits, ch.channels, h, w)
            images[name] = img
            known[units[name]] = True
        else:
            images[name] = np.zeros((h, w, ch.channels), np.uint16)
    limits = {ch.section: [] for ch in loaded.layout}
    for ch in loaded.layout:
        limits[ch.section].append(1 << ch.bits)
    for name in fallback:
        if (images[name].reshape(-1, len(limits[name])) >= np.array(limits[name])).any():
            raise SplatpackError(f"section '{name}' has values outside the model's layout")
    known_bits = to_planes(images, loaded.layout)
    sec = get(BITS_SECTION)
    if sec.codec != "raw":
        raise SplatpackError(f"section '{BITS_SECTION}' uses codec '{sec.codec}', expected 'raw'")
    # a bit costs at most 16 bits (probabilities are clamped to 2^-16): at most K·H·W/2 words
    words = decode_array(sec.payload, "raw", BITS_SECTION, len(known) * h * w // 2 + 16, dtype=np.uint32)
    words = words.reshape(-1).astype("<u4").tobytes()
    bits = decode_planes(loaded.model, words, h, w, known_bits, known, {int(k): v for k, v in static.items()})
    decoded = from_planes(bits, loaded.layout)
    out = {}
    for name, ch in chans.items():
        if name not in fallback:
            layout = ImageLayout("ans", ch.stored_bits)
            out[name] = Section(name, "ans", layout.encode(decoded[name].astype(layout.dtype), 0))
    return out
