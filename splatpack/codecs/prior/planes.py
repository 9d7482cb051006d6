"""The bit-planes of a grid scene's quantised attribute images (mode b of issue 14's learned
coding): the integer images the grid codec (:mod:`splatpack.codecs.grid`) codes, read back from
its own lossless sections so the values are its values exactly, and split into bit-planes
[K, H, W], most significant first, for :mod:`splatpack.generative.entropy`.

A :class:`PlaneChannel` names one channel of one grid section and how many of its low bits are
planes (``bits``; the quaternion's largest-component index, 0..3, is stored with the
attribute's bits but has 2). :data:`DEFAULT_LAYOUT` is the grid codec's ``quality="default"``
for SH degree 0 (positions 13 bits, colour DC 7, log-scales 7, smallest-three quaternions 7 +
the 2-bit index, opacity logits 8); sections outside a layout (the SH rest) stay as the grid
codec coded them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from splatpack.codecs.grid.layout import ImageLayout
from splatpack.spk.arrays import CodecError, decode_array
from splatpack.spk.container import Section

__all__ = [
    "DEFAULT_LAYOUT",
    "PlaneChannel",
    "from_layout_image",
    "from_planes",
    "grid_images",
    "layout_from_dicts",
    "layout_image",
    "own_coding",
    "plane_ranks",
    "plane_units",
    "section_image",
    "to_planes",
]


@dataclass(frozen=True)
class PlaneChannel:
    """Channel ``channel`` of section ``section`` (stored with ``stored_bits`` per value), coded
    as its ``bits`` low bit-planes."""

    section: str
    channel: int
    bits: int
    stored_bits: int
    channels: int  # of the section's image

    def to_dict(self) -> dict:
        return asdict(self)


def _attribute(section: str, channels: int, bits: int, coded: tuple[int, ...] | None = None) -> list[PlaneChannel]:
    coded = coded or (bits,) * channels
    return [PlaneChannel(section, c, coded[c], bits, channels) for c in range(channels)]


#: the grid codec's quality "default" (6), SH degree 0
DEFAULT_LAYOUT: tuple[PlaneChannel, ...] = tuple(
    _attribute("grid.means", 3, 13)
    + _attribute("grid.sh0", 3, 7)
    + _attribute("grid.scales", 3, 7)
    + _attribute("grid.quats", 4, 7, (7, 7, 7, 2))
    + _attribute("grid.opacities", 1, 8)
)


def layout_from_dicts(items: list[dict]) -> tuple[PlaneChannel, ...]:
    return tuple(PlaneChannel(**d) for d in items)


def plane_ranks(layout: tuple[PlaneChannel, ...]) -> tuple[int, ...]:
    """The rank of every plane, 0 = its channel's most significant coded bit (plane order)."""
    return tuple(r for ch in layout for r in range(ch.bits))


def plane_units(layout: tuple[PlaneChannel, ...]) -> dict[str, list[int]]:
    """Section → the indices of its planes (a section falls back to its own coder as a whole)."""
    units: dict[str, list[int]] = {}
    k = 0
    for ch in layout:
        units.setdefault(ch.section, []).extend(range(k, k + ch.bits))
        k += ch.bits
    return units


def section_image(section: Section, bits: int, channels: int, height: int, width: int) -> np.ndarray:
    """A lossless grid section (one plane of ``channels``) as its integer image [H, W, channels]."""
    shape = ImageLayout(section.codec, bits).image_shape(1, height, width, channels)
    flat = (height * width, channels) if section.codec == "ans" else shape
    img = decode_array(section.payload, section.codec, section.name, height * width * channels, shape=flat)
    return img.reshape(height, width, channels)


def grid_images(sections: list[Section], meta: dict, layout: tuple[PlaneChannel, ...]) -> dict[str, np.ndarray] | None:
    """The layout's sections as integer images [H, W, c] (the grid codec's values exactly), or
    None when the scene's coding does not match the layout (bits, channels, lossless, one plane,
    whole values in the image)."""
    h, w = meta["grid"]["height"], meta["grid"]["width"]
    by_name = {s.name: s for s in sections}
    out = {}
    for name, chans in _sections(layout).items():
        attr = meta["attributes"].get(name.split(".", 1)[1])
        sec = by_name.get(name)
        if attr is None or sec is None or attr.get("distance", 0) != 0 or attr.get("bits") != chans[0].stored_bits:
            return None
        if attr.get("low_bits", 0):  # values split between the image and a low-bit stream
            return None
        try:
            img = section_image(sec, chans[0].stored_bits, chans[0].channels, h, w)
        except CodecError:
            return None
        limits = np.array([1 << ch.bits for ch in chans])
        if (img.reshape(-1, len(chans)) >= limits).any():
            return None
        out[name] = img
    return out


def _sections(layout: tuple[PlaneChannel, ...]) -> dict[str, list[PlaneChannel]]:
    out: dict[str, list[PlaneChannel]] = {}
    for ch in layout:
        out.setdefault(ch.section, []).append(ch)
    return out


def to_planes(images: dict[str, np.ndarray], layout: tuple[PlaneChannel, ...]) -> np.ndarray:
    """Integer images → bits [K, H, W] uint8, each channel's bits most significant first."""
    planes = []
    for ch in layout:
        v = images[ch.section][..., ch.channel].astype(np.int64)
        planes += [((v >> (ch.bits - 1 - j)) & 1).astype(np.uint8) for j in range(ch.bits)]
    return np.stack(planes)


def from_planes(bits: np.ndarray, layout: tuple[PlaneChannel, ...]) -> dict[str, np.ndarray]:
    """Inverse of :func:`to_planes`: section → integer image [H, W, c] (uint16)."""
    _, h, w = bits.shape
    out = {name: np.zeros((h, w, chans[0].channels), np.uint16) for name, chans in _sections(layout).items()}
    k = 0
    for ch in layout:
        v = np.zeros((h, w), np.int64)
        for j in range(ch.bits):
            v = (v << 1) | bits[k + j]
        out[ch.section][..., ch.channel] = v
        k += ch.bits
    return out


def layout_image(images: dict[str, np.ndarray], layout: tuple[PlaneChannel, ...]) -> np.ndarray:
    """Integer images → one image [H, W, K] of the layout's channels, in layout order (int64)."""
    return np.stack([images[ch.section][..., ch.channel].astype(np.int64) for ch in layout], -1)


def from_layout_image(image: np.ndarray, layout: tuple[PlaneChannel, ...]) -> dict[str, np.ndarray]:
    """Inverse of :func:`layout_image`: section → integer image [H, W, c] (uint16)."""
    h, w, _ = image.shape
    out = {name: np.zeros((h, w, chans[0].channels), np.uint16) for name, chans in _sections(layout).items()}
    for k, ch in enumerate(layout):
        out[ch.section][..., ch.channel] = image[..., k]
    return out


def own_coding(
    sections: list[Section], images: dict[str, np.ndarray], layout: tuple[PlaneChannel, ...]
) -> dict[str, Section]:
    """Per section of ``images``, the smaller of the grid codec's payload and the same image coded
    with order-0 ``ans`` (what the grid codec's ``image_codec="ans"`` writes): the coding a
    section falls back to."""
    stored = {ch.section: ch.stored_bits for ch in layout}
    out = {}
    for s in sections:
        if s.name in images:
            coder = ImageLayout("ans", stored[s.name])
            ans = Section(s.name, "ans", coder.encode(images[s.name].astype(coder.dtype), 0))
            out[s.name] = ans if len(ans.payload) < len(s.payload) else s
    return out
