"""PlayCanvas compressed PLY (``*.compressed.ply``), read only.

Spec: playcanvas/splat-transform ``src/lib/readers/decompress-ply.ts`` (reader),
``writers/write-compressed-ply.ts`` and ``writers/compressed-chunk.ts`` (writer), the format
of the PlayCanvas engine and SuperSplat. A binary little-endian PLY with up to three elements:

* ``chunk`` (one per 256 Gaussians, ``ceil(N/256)`` rows), float32: ``min_x min_y min_z max_x
  max_y max_z``, ``min_scale_* max_scale_*`` (log scales) and, optionally, ``min_r min_g min_b
  max_r max_g max_b`` (colour ``0.5 + SH_C0·f_dc``);
* ``vertex`` (``N`` rows), uint32 each: ``packed_position`` (11-10-11 bits, unorm within the
  chunk's bounds), ``packed_rotation`` (2 bits index of the largest component of
  ``(rot_0..rot_3)`` = ``wxyz`` + 3 × 10-bit ``(v·√2/2 + 0.5)``), ``packed_scale`` (11-10-11
  within the chunk's scale bounds), ``packed_color`` (8-8-8-8: RGB unorm within the chunk's
  colour bounds, or absolute when the chunk has none; A = ``sigmoid(opacity)``);
* ``sh`` (optional, ``N`` rows): ``f_rest_0..f_rest_{9,24,44}`` uint8, channel-major as in the
  INRIA PLY, ``sh = (q/256 − 0.5)·8`` with ``q + 0.5`` for interior codes (0 → −4, 255 → +4).

Properties are located by name, so their order may differ. Every element count is checked
against the file size before anything is read; errors are :class:`~splatpack.core.errors.SplatpackError`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.core.limits import check_gaussians
from splatpack.core.sh import SH_C0
from splatpack.formats import ply_header
from splatpack.formats.base import SceneFormat
from splatpack.formats.ply_header import MAX_HEADER
from splatpack.formats.splat import OPACITY_EPS, unit_quats

CHUNK_SIZE = 256
CHUNK_BOUNDS = [
    "min_x",
    "min_y",
    "min_z",
    "max_x",
    "max_y",
    "max_z",
    "min_scale_x",
    "min_scale_y",
    "min_scale_z",
    "max_scale_x",
    "max_scale_y",
    "max_scale_z",
]
CHUNK_COLOUR = ["min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]
PACKED = ["packed_position", "packed_rotation", "packed_scale", "packed_color"]


def parse_ply_header(head: bytes, path: str | Path) -> tuple[int, list[tuple[str, int, np.dtype]]]:
    """``(header bytes, [(element, count, row dtype)])`` of a binary little-endian PLY header
    without list properties (:func:`~splatpack.formats.ply_header.parse_ply_header`)."""
    header = ply_header.parse_ply_header(head, path)
    if header.format != "binary_little_endian":
        raise SplatpackError(f"PLY format {header.format!r} is not binary_little_endian", path)
    for e in header.elements:
        if not e.fixed_size:
            raise SplatpackError(f"PLY element '{e.name}' has list properties", path)
    return header.length, [(e.name, e.count, e.dtype("<")) for e in header.elements]


def is_compressed_ply(elements: list[tuple[str, int, np.dtype]]) -> bool:
    """Whether parsed PLY elements have PlayCanvas's compressed layout (``chunk`` + packed vertices)."""
    by_name = {name: dt for name, _, dt in elements}
    return "chunk" in by_name and "vertex" in by_name and "packed_position" in (by_name["vertex"].names or ())


def _unorm(v: np.ndarray, shift: int, bits: int) -> np.ndarray:
    return ((v >> np.uint32(shift)) & np.uint32((1 << bits) - 1)).astype(np.float64) / ((1 << bits) - 1)


def _lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return lo * (1.0 - t) + hi * t


def _check_layout(elements, size: int, header_len: int, path: Path) -> dict[str, tuple[int, np.dtype, int]]:
    """Element name → (count, dtype, byte offset), after checking names, types and sizes."""
    info, offset = {}, header_len
    for name, count, dt in elements:
        info[name] = (count, dt, offset)
        offset += count * dt.itemsize  # Python ints: no overflow on forged counts
    if offset > size:
        raise SplatpackError(f"header claims {offset} bytes of data but the file holds {size} (truncated?)", path)
    extra = set(info) - {"chunk", "vertex", "sh"}
    if extra:
        raise SplatpackError(f"unexpected element(s) {sorted(extra)} in a compressed PLY", path)
    n, vdt, _ = info["vertex"]
    cdt = info["chunk"][1]
    for p in PACKED:
        if p not in (vdt.names or ()) or vdt[p] != np.dtype("<u4"):
            raise SplatpackError(f"compressed PLY vertex property '{p}' is missing or not uint", path)
    chunk_props = CHUNK_BOUNDS + (CHUNK_COLOUR if "min_r" in (cdt.names or ()) else [])
    for p in chunk_props:
        if p not in (cdt.names or ()) or cdt[p] != np.dtype("<f4"):
            raise SplatpackError(f"compressed PLY chunk property '{p}' is missing or not float", path)
    check_gaussians(n, path, sh_degree=3 if "sh" in info else 0)
    if info["chunk"][0] != math.ceil(n / CHUNK_SIZE):
        raise SplatpackError(f"{info['chunk'][0]} chunks do not match {n} vertices (256 per chunk)", path)
    if "sh" in info:
        shn, sdt, _ = info["sh"]
        k = len(sdt.names or ())
        if shn != n or k not in (9, 24, 45):
            raise SplatpackError(f"compressed PLY sh element has {shn} rows × {k} properties", path)
        for i in range(k):
            if f"f_rest_{i}" not in (sdt.names or ()) or sdt[f"f_rest_{i}"] != np.dtype("u1"):
                raise SplatpackError(f"compressed PLY sh property 'f_rest_{i}' is missing or not uchar", path)
    return info


def decode_compressed_ply(data: bytes, path: str | Path = "<bytes>") -> GaussianSet:
    """Gaussians from the bytes of a PlayCanvas compressed PLY."""
    path = Path(path)
    header_len, elements = parse_ply_header(data[:MAX_HEADER], path)
    if not is_compressed_ply(elements):
        raise SplatpackError("not a compressed PLY (no 'chunk' element with packed vertices)", path)
    info = _check_layout(elements, len(data), header_len, path)

    def table(name: str) -> np.ndarray:
        count, dt, offset = info[name]
        return np.frombuffer(data, dtype=dt, count=count, offset=offset)

    chunk, vertex = table("chunk"), table("vertex")
    n = len(vertex)
    bounds = np.stack([chunk[p] for p in CHUNK_BOUNDS], axis=1).astype(np.float64)
    if not np.isfinite(bounds).all():
        raise SplatpackError("compressed PLY chunk bounds are not finite", path)
    ci = np.arange(n) // CHUNK_SIZE
    b = bounds[ci]  # [N, 12]

    pos, rot, scl, col = (vertex[p] for p in PACKED)
    t = np.stack([_unorm(pos, 21, 11), _unorm(pos, 11, 10), _unorm(pos, 0, 11)], axis=1)
    means = _lerp(b[:, 0:3], b[:, 3:6], t)
    t = np.stack([_unorm(scl, 21, 11), _unorm(scl, 11, 10), _unorm(scl, 0, 11)], axis=1)
    scales = _lerp(b[:, 6:9], b[:, 9:12], t)

    c = np.stack([_unorm(col, 24, 8), _unorm(col, 16, 8), _unorm(col, 8, 8)], axis=1)
    if "min_r" in (chunk.dtype.names or ()):
        cb = np.stack([chunk[p] for p in CHUNK_COLOUR], axis=1).astype(np.float64)
        if not np.isfinite(cb).all():
            raise SplatpackError("compressed PLY chunk colour bounds are not finite", path)
        c = _lerp(cb[ci, 0:3], cb[ci, 3:6], c)
    sh0 = (c - 0.5) / SH_C0
    alpha = np.clip(_unorm(col, 0, 8), OPACITY_EPS, 1.0 - OPACITY_EPS)
    opacities = np.log(alpha / (1.0 - alpha))

    which = (rot >> np.uint32(30)).astype(np.int64)
    norm = 1.0 / (np.sqrt(2.0) * 0.5)
    abc = np.stack([(_unorm(rot, s, 10) - 0.5) * norm for s in (20, 10, 0)], axis=1)
    others = np.array([[i for i in range(4) if i != w] for w in range(4)], dtype=np.int64)
    q = np.zeros((n, 4))
    rows = np.arange(n)[:, None]
    q[rows, others[which]] = abc
    q[np.arange(n), which] = np.sqrt(np.maximum(0.0, 1.0 - (abc * abc).sum(axis=1)))

    if "sh" in info:
        raw = table("sh")
        k = len(raw.dtype.names) // 3
        u = np.stack([raw[f"f_rest_{i}"] for i in range(3 * k)], axis=1).astype(np.float64)
        u = np.where(u == 0, 0.0, np.where(u == 255, 1.0, (u + 0.5) / 256.0))
        shN = ((u - 0.5) * 8.0).reshape(n, 3, k).transpose(0, 2, 1)
    else:
        shN = np.zeros((n, 0, 3))
    with np.errstate(over="ignore"):
        gs = GaussianSet.from_numpy(means, unit_quats(q), scales, opacities, sh0, shN)
    if not all(torch.isfinite(t).all() for t in (gs.means, gs.scales, gs.sh0)):
        raise SplatpackError("compressed PLY decodes to non-finite positions, scales or colours", path)
    return gs


def load_compressed_ply(path: str | Path) -> GaussianSet:
    """Read a PlayCanvas ``.compressed.ply`` (SH degree from its optional ``sh`` element)."""
    path = Path(path)
    if not path.is_file():
        raise SplatpackError("file does not exist", path)
    return decode_compressed_ply(path.read_bytes(), path)


def _sniff(head: bytes, path: Path) -> bool:
    if not head.startswith(b"ply"):
        return False
    try:
        _, elements = parse_ply_header(head, path)
    except SplatpackError:
        return False  # the INRIA reader reports what is wrong
    return is_compressed_ply(elements)


FORMAT = SceneFormat(name="compressed-ply", extensions=(".compressed.ply",), sniff=_sniff, read=load_compressed_ply)
