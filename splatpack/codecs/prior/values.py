"""Mode b of the learned coding with a value model: a grid scene's quantised attribute images
coded value by value under :mod:`splatpack.generative.valuemodel` (:mod:`splatpack.generative.valuecoding`),
lossless with respect to the grid codec's values, so the decoded Gaussians (and renders) are the
grid codec's exactly.

Encoding (:func:`encode_values_mode`) starts from the grid codec's own sections: the layout's
images (:mod:`.planes`) become one image [H, W, K]; a first pass measures each channel's code
length under the model; every section whose channels would cost no less than the grid codec's
own coding (:func:`~.planes.own_coding`) keeps that coding (per-section fallback) and is known
to the model as context, and another pass re-checks the rest, until no section falls back. The
rest are coded in one ANS stream (section ``prior.values``, u32 words). Sections outside the
layout (the empty-cell list, the SH rest) are kept as they are. Decoding
(:func:`decode_values_mode`) reverses it and hands the images back as the grid codec's sections.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from splatpack.codecs.grid.layout import ImageLayout
from splatpack.codecs.prior.modelfile import LoadedCodingModel
from splatpack.codecs.prior.planes import (
    PlaneChannel,
    from_layout_image,
    grid_images,
    layout_image,
    own_coding,
    section_image,
)
from splatpack.core.errors import SplatpackError
from splatpack.generative.valuecoding import decode_values, encode_values
from splatpack.spk.arrays import decode_array, encode_array
from splatpack.spk.container import Section

__all__ = ["VALUES_SECTION", "ValueStats", "decode_values_mode", "encode_values_mode", "section_channels"]

VALUES_SECTION = "prior.values"
#: a value costs at most this many bits in the stream (constriction's smallest probability is
#: 2^−24 of its quantised models); bounds the stream a decoder accepts
MAX_BITS_PER_VALUE = 24


@dataclass
class ValueStats:
    """What one encoding measured: the stream's cross-entropy (bits) and bytes, the fallback
    sections and their bytes, passes, seconds; and the first pass (every section under the
    model): its bytes, cross-entropy and per section its cost in bits."""

    cross_entropy_bits: float = 0.0
    stream_bytes: int = 0
    fallback: list[str] = field(default_factory=list)
    fallback_bytes: int = 0
    seconds: float = 0.0
    passes: int = 1
    model_only_bytes: int = 0
    model_only_cross_entropy_bits: float = 0.0
    model_only_section_bits: dict[str, float] = field(default_factory=dict)


def section_channels(layout: tuple[PlaneChannel, ...]) -> dict[str, list[int]]:
    """Section → the indices of its channels in the layout (a section falls back as a whole)."""
    out: dict[str, list[int]] = {}
    for k, ch in enumerate(layout):
        out.setdefault(ch.section, []).append(k)
    return out


def encode_values_mode(
    sections: list[Section], meta: dict[str, Any], loaded: LoadedCodingModel
) -> tuple[list[Section], dict[str, Any], dict[str, Any], ValueStats]:
    """The grid codec's (sections, meta) → (sections with the layout's images replaced by the
    value-model stream where that is smaller, the grid meta (a fallback section's codec may now
    be ``ans``), the ``prior`` meta entry, stats)."""
    start = time.time()
    images = grid_images(sections, meta, loaded.layout)
    if images is None:
        raise SplatpackError(
            f"the value model '{loaded.name}' codes grids of {loaded.card.get('grid_codec', 'another layout')}"
        )
    image = layout_image(images, loaded.layout)
    units = section_channels(loaded.layout)
    own = own_coding(sections, images, loaded.layout)
    own_bytes = {u: len(own[u].payload) for u in units}
    known = np.zeros(len(loaded.layout), bool)
    coded = first = encode_values(loaded.model, image, known)
    fallback: list[str] = []
    passes = 1
    while True:  # known channels change the model's code of the rest: re-check until none falls back
        more = [
            u
            for u, chans in units.items()
            if u not in fallback and math.ceil(coded.channel_bits[chans].sum() / 8) >= own_bytes[u]
        ]
        if not more:
            break
        fallback = [u for u in units if u in fallback or u in more]
        for u in more:
            known[units[u]] = True
        if known.all():
            break
        coded, passes = encode_values(loaded.model, image, known), passes + 1
    stream = coded.words if not known.all() else b""
    stats = ValueStats(
        cross_entropy_bits=0.0 if known.all() else coded.coded_bits,
        stream_bytes=len(stream),
        fallback=list(fallback),
        fallback_bytes=sum(own_bytes[u] for u in fallback),
        passes=passes,
        model_only_bytes=len(first.words),
        model_only_cross_entropy_bits=first.coded_bits,
        model_only_section_bits={u: float(first.channel_bits[c].sum()) for u, c in units.items()},
    )
    out = [own[s.name] if s.name in fallback else s for s in sections if s.name not in units or s.name in fallback]
    out.append(Section(VALUES_SECTION, "raw", encode_array(np.frombuffer(stream, "<u4").astype(np.uint32), "raw")))
    attrs = dict(meta["attributes"])
    for u in fallback:
        key = u.split(".", 1)[1]
        attrs[key] = {**attrs[key], "codec": own[u].codec}
    entry = {
        "mode": "values",
        "model": loaded.name,
        "sha256": loaded.sha256,
        "version": loaded.version,
        "fallback": list(fallback),
    }
    stats.seconds = time.time() - start
    return out, {**meta, "attributes": attrs}, entry, stats


def decode_values_mode(
    get, meta: dict[str, Any], entry: dict[str, Any], loaded: LoadedCodingModel
) -> dict[str, Section]:
    """The layout's sections, as the grid codec would read them (``ans``-coded images), from a
    file's ``prior`` meta ``entry``: ``get(name)`` returns a stored section. ``meta``'s grid
    shape must already be checked. Raises :class:`SplatpackError` for anything inconsistent."""
    units = section_channels(loaded.layout)
    fallback = entry["fallback"]
    if not isinstance(fallback, list) or not set(fallback) <= set(units) or len(set(fallback)) != len(fallback):
        raise SplatpackError("prior meta: invalid fallback list")
    h, w = meta["grid"]["height"], meta["grid"]["width"]
    first = {ch.section: ch for ch in loaded.layout}
    known = np.zeros(len(loaded.layout), bool)
    known_image = np.zeros((h, w, len(loaded.layout)), np.int64)
    for name in fallback:
        ch = first[name]
        img = section_image(get(name), ch.stored_bits, ch.channels, h, w).reshape(h, w, -1).astype(np.int64)
        limits = np.array([1 << loaded.layout[k].bits for k in units[name]])
        if (img >= limits).any():
            raise SplatpackError(f"section '{name}' has values outside the model's layout")
        known_image[..., units[name]] = img
        known[units[name]] = True
    sec = get(VALUES_SECTION)
    if sec.codec != "raw":
        raise SplatpackError(f"section '{VALUES_SECTION}' uses codec '{sec.codec}', expected 'raw'")
    most = int((~known).sum()) * h * w * MAX_BITS_PER_VALUE // 32 + 16
    words = decode_array(sec.payload, "raw", VALUES_SECTION, most, dtype=np.uint32)
    words = words.reshape(-1).astype("<u4").tobytes()
    if known.all():
        if words:
            raise SplatpackError(f"section '{VALUES_SECTION}' holds data but every section falls back")
        image = known_image
    else:
        image = decode_values(loaded.model, words, h, w, known_image, known)
    decoded = from_layout_image(image, loaded.layout)
    out = {}
    for name, ch in first.items():
        if name not in fallback:
            coder = ImageLayout("ans", ch.stored_bits)
            out[name] = Section(name, "ans", coder.encode(decoded[name].astype(coder.dtype), 0))
    return out
