"""Niantic SPZ (``.spz``), versions 1–4 read, versions 3 and 4 written.

Spec: nianticlabs/spz (``src/cc/load-spz.cc``, ``splat-types.h``, README "Internals"); the v4
container as read by PlayCanvas splat-transform (``read-spz.ts``) and gsply (``gsply/spz.py``).

Two containers carry the same attribute sections, in this order, for ``N`` Gaussians:

==========  ==============  ==============================================================
positions   9·N (v1: 6·N)   24-bit signed fixed point, ``fractional_bits`` fraction (v1: f16)
alphas      N               ``sigmoid(opacity)·255``
colors      3·N             ``f_dc·0.15·255 + 127.5``
scales      3·N             ``(log_scale + 10)·16``
rotations   3·N or 4·N      v1/v2: ``xyz·127.5 + 127.5`` with ``w ≥ 0`` implied; v3/v4: smallest
                            three, 2 bits index of the largest + 3 × (sign + 9-bit magnitude)
sh          3·D·N           ``D = 0, 3, 8, 15`` coefficients × RGB, ``sh·128 + 128``
==========  ==============  ==============================================================

* **v1–v3**: one gzip stream of a 16-byte header (``magic "NGSP", version, N, sh_degree,
  fractional_bits, flags, reserved``) followed by the sections (and, with flag 0x2, extension
  records, which are skipped).
* **v4**: a plain 32-byte header (the same fields, ``num_streams`` in the reserved byte, then
  ``toc_byte_offset`` u32 and 12 reserved bytes), optional extension records up to the table of
  contents, the TOC (``num_streams`` × (compressed u64, uncompressed u64)), then one zstd
  stream per non-empty section.

**Axes.** SPZ stores right-up-back (RUB, OpenGL/three.js) coordinates, while the INRIA PLY
that :class:`~splatpack.core.GaussianSet` follows is right-down-front (RDF); Niantic's
``ply_to_spz``/``spz_to_ply`` convert between them. By default (``convert_axes=True``) reading
and writing do the same: ``y`` and ``z`` change sign, rotations become ``(w, x, −y, −z)``
and the SH coefficients take Niantic's ``flipSh`` signs. PlayCanvas splat-transform and Spark
agree with this (checked against splat-transform in both directions by
``tests/formats/test_spz_splat_transform.py``); gsply 0.4.6 keeps the stored values, so its
reading of a file has ``y`` and ``z`` negated. ``convert_axes=False`` keeps the stored values.

**What gsply does and does not do here.** Writing goes through ``gsply.write_spz`` (v4 by
default, the newest version that both this reader and gsply's reader handle; v3 on request):
its packing follows ``load-spz.cc``. Reading is our own code, because ``gsply.read_spz``
inflates a gzip stream without any limit and sizes a zstd output buffer from the table of
contents, so a forged count or a compression bomb makes it allocate what the file claims. Here
every count is checked before anything is allocated: the payload that a header asks for must
fit the compressed bytes at the format's largest possible expansion (deflate ≤ 1032:1, zstd
≤ 32768:1, one 128 KiB block per 4-byte RLE block), decompression output is capped at what
the header allows, and a stream that produces more or less is refused. A count above what a real
encoder's file of that size holds (:data:`GZIP_GAUSSIANS_PER_BYTE`, :data:`ZSTD_GAUSSIANS_PER_BYTE`)
or above the Gaussian ceiling is refused too (:mod:`splatpack.core.limits`). Errors are
:class:`~splatpack.core.errors.SplatpackError`. Needs ``zstandard`` for v4 (as ``gsply[spz]``).
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.core.atomic import atomic_write_bytes
from splatpack.core.errors import SplatpackError
from splatpack.core.limits import check_gaussians
from splatpack.formats.base import SceneFormat
from splatpack.formats.splat import logit_u8, require_finite, unit_quats

MAGIC = 0x5053474E  # "NGSP" little-endian
LEGACY_HEADER = struct.Struct("<IIIBBBB")  # 16 bytes, inside the gzip stream (v1–v3)
V4_HEADER = struct.Struct("<IIIBBBBI12x")  # 32 bytes, plain (v4)
TOC_ENTRY = struct.Struct("<QQ")
COLOR_SCALE = 0.15
SH_DIM = {0: 0, 1: 3, 2: 8, 3: 15}
FLAG_ANTIALIASED = 0x1
FLAG_EXTENSIONS = 0x2
DEFLATE_MAX_RATIO = 1032  # the most a deflate stream can expand (258-byte matches in ~2 bits)
ZSTD_MAX_RATIO = 32768  # 128 KiB block per 4-byte RLE block
# the most Gaussians a byte of a real encoder's file holds (a regular lattice of identical
# Gaussians, the most compressible scene that is still a scene, stays well below)
GZIP_GAUSSIANS_PER_BYTE = 8
ZSTD_GAUSSIANS_PER_BYTE = 32
MAX_TRAILING = 16 << 20  # extension bytes after a gzip payload
CHUNK = 1 << 20
WRITE_VERSION = 4
# Niantic's flipSh for RUB <-> RDF (x kept, y and z negated), per coefficient of bands 1–3
SH_FLIP = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], dtype=np.float32)


# ---- axes -------------------------------------------------------------------------------------
def flip_axes(means: np.ndarray, quats_wxyz: np.ndarray, shN: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RDF ↔ RUB (a 180° turn about x, its own inverse): negate ``y``, ``z`` and the matching SH."""
    k = shN.shape[1]
    return (
        means * np.array([1, -1, -1], dtype=means.dtype),
        quats_wxyz * np.array([1, 1, -1, -1], dtype=quats_wxyz.dtype),
        shN * SH_FLIP[:k].astype(shN.dtype)[None, :, None],
    )


# ---- bounded decompression ---------------------------------------------------------------------
def section_sizes(n: int, sh_degree: int, version: int) -> list[int]:
    """Uncompressed bytes of each section, in file order."""
    pos = 6 if version == 1 else 9
    rot = 4 if version >= 3 else 3
    return [pos * n, n, 3 * n, 3 * n, rot * n, 3 * SH_DIM[sh_degree] * n]


def _inflate(d, data: bytes | memoryview, limit: int) -> bytes:
    """Up to ``limit`` bytes out of the decompressor ``d``, fed ``data`` (then its unconsumed tail)."""
    out = bytearray()
    buf = data
    while len(out) < limit:
        chunk = d.decompress(buf, min(CHUNK, limit - len(out)))
        progressed = bool(chunk) or len(d.unconsumed_tail) != len(buf)
        buf = d.unconsumed_tail
        out += chunk
        if d.eof or not progressed:
            break
    return bytes(out)


def _drain(d, limit: int) -> int:
    """Decompress what is left (discarding it) up to ``limit`` bytes; the number of bytes."""
    total = 0
    while not d.eof:
        buf = d.unconsumed_tail
        chunk = d.decompress(buf, CHUNK)
        total += len(chunk)
        if total > limit:
            return total
        if not chunk and len(d.unconsumed_tail) == len(buf):
            break
    return total


def _zstd_bounded(frame: memoryview, usize: int, name: str, path: Path) -> bytes:
    try:
        import zstandard
    except ImportError:  # pragma: no cover - environment dependent
        raise SplatpackError("reading SPZ v4 needs the 'zstandard' package (pip install zstandard)", path) from None
    out = bytearray()
    try:
        for chunk in zstandard.ZstdDecompressor().read_to_iter(frame, read_size=CHUNK, write_size=CHUNK):
            out += chunk
            if len(out) > usize:
                raise SplatpackError(f"SPZ stream '{name}' decompresses to more than its {usize} bytes", path)
    except zstandard.ZstdError as e:
        raise SplatpackError(f"corrupt zstd stream '{name}': {e}", path) from None
    if len(out) != usize:
        raise SplatpackError(f"SPZ stream '{name}' holds {len(out)} of {usize} bytes (truncated?)", path)
    return bytes(out)


def _check_header(sh_degree: int, fractional_bits: int, path: Path) -> None:
    if sh_degree not in SH_DIM:
        raise SplatpackError(f"unsupported SPZ SH degree {sh_degree}", path)
    if fractional_bits > 24:
        raise SplatpackError(f"invalid SPZ fractional bits {fractional_bits}", path)


def _read_legacy(raw: bytes, path: Path) -> tuple[int, int, int, int, bytes]:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        head = _inflate(d, raw, LEGACY_HEADER.size)
        if len(head) < LEGACY_HEADER.size:
            raise SplatpackError("SPZ gzip stream ends inside its 16-byte header", path)
        magic, version, n, sh_degree, fbits, _flags, _ = LEGACY_HEADER.unpack(head)
        if magic != MAGIC:
            raise SplatpackError(f"not an SPZ file (magic 0x{magic:08x})", path)
        if version not in (1, 2, 3):
            raise SplatpackError(f"unsupported SPZ version {version} in a gzip container", path)
        _check_header(sh_degree, fbits, path)
        need = sum(section_sizes(n, sh_degree, version))
        if need > len(raw) * DEFLATE_MAX_RATIO:
            raise SplatpackError(
                f"header claims {n} Gaussians ({need} bytes) but a {len(raw)}-byte gzip stream cannot hold them", path
            )
        check_gaussians(n, path, file_bytes=len(raw), per_byte=GZIP_GAUSSIANS_PER_BYTE, sh_degree=sh_degree)
        body = _inflate(d, d.unconsumed_tail, need)
        if len(body) < need:
            raise SplatpackError(
                f"SPZ payload holds {len(body)} of the {need} bytes its header claims (truncated?)", path
            )
        if _drain(d, MAX_TRAILING) > MAX_TRAILING:
            raise SplatpackError(f"SPZ gzip stream has more than {MAX_TRAILING} bytes after its payload", path)
        if not d.eof:
            raise SplatpackError("SPZ gzip stream is truncated (no end of stream)", path)
    except zlib.error as e:
        raise SplatpackError(f"corrupt SPZ gzip stream: {e}", path) from None
    return version, n, sh_degree, fbits, body


def _read_v4(raw: bytes, path: Path) -> tuple[int, int, int, int, bytes]:
    if len(raw) < V4_HEADER.size:
        raise SplatpackError(f"SPZ file too short for its 32-byte header ({len(raw)} bytes)", path)
    magic, version, n, sh_degree, fbits, _flags, num_streams, toc_off = V4_HEADER.unpack_from(raw)
    if version != 4:
        raise SplatpackError(f"unsupported SPZ version {version} in an NGSP (zstd) container", path)
    _check_header(sh_degree, fbits, path)
    sizes = [s for s in section_sizes(n, sh_degree, version) if s > 0]
    if num_streams != len(sizes):
        raise SplatpackError(f"SPZ v4 has {num_streams} streams, expected {len(sizes)} for SH degree {sh_degree}", path)
    toc_end = toc_off + TOC_ENTRY.size * num_streams
    if toc_off < V4_HEADER.size or toc_end > len(raw):
        raise SplatpackError(f"SPZ v4 table of contents at {toc_off} lies outside the file", path)
    view = memoryview(raw)
    names = ["positions", "alphas", "colors", "scales", "rotations", "sh"]
    offset, spans = toc_end, []
    for i, expected in enumerate(sizes):
        csize, usize = TOC_ENTRY.unpack_from(raw, toc_off + i * TOC_ENTRY.size)
        if usize != expected:
            raise SplatpackError(
                f"SPZ v4 stream '{names[i]}' claims {usize} bytes, the header implies {expected}", path
            )
        if csize > len(raw) - offset:
            raise SplatpackError(f"SPZ v4 stream '{names[i]}' runs past the end of the file (truncated?)", path)
        if usize > csize * ZSTD_MAX_RATIO:
            raise SplatpackError(
                f"header claims {n} Gaussians but the {csize}-byte stream '{names[i]}' cannot hold {usize} bytes", path
            )
        spans.append((names[i], offset, csize, usize))
        offset += csize
    check_gaussians(n, path, file_bytes=len(raw), per_byte=ZSTD_GAUSSIANS_PER_BYTE, sh_degree=sh_degree)
    body = b"".join(_zstd_bounded(view[o : o + c], u, name, path) for name, o, c, u in spans)
    return version, n, sh_degree, fbits, body


# ---- decoding ------------------------------------------------------------------------------------
def _decode_quats_smallest_three(rot: np.ndarray) -> np.ndarray:
    """SPZ v3 rotations: u32 = largest (2 bits) | 3 × (sign bit, 9-bit magnitude) → xyzw."""
    packed = rot.reshape(-1, 4).astype(np.uint32)
    packed = packed[:, 0] | (packed[:, 1] << 8) | (packed[:, 2] << 16) | (packed[:, 3] << 24)
    largest = (packed >> 30).astype(np.int64)
    # the components other than the largest, from the highest axis down, sit in the low bits first
    others = np.array([[a for a in (3, 2, 1, 0) if a != big] for big in range(4)], dtype=np.int64)
    n = len(packed)
    q = np.zeros((n, 4), dtype=np.float64)
    rows = np.arange(n)
    for slot in range(3):
        bits = (packed >> np.uint32(10 * slot)) & np.uint32(0x3FF)
        value = np.sqrt(0.5) * (bits & np.uint32(0x1FF)).astype(np.float64) / 511.0
        q[rows, others[largest, slot]] = np.where(bits >> np.uint32(9), -value, value)
    q[rows, largest] = np.sqrt(np.maximum(0.0, 1.0 - (q * q).sum(axis=1)))
    return q


def decode_sections(body: bytes, version: int, n: int, sh_degree: int, fractional_bits: int) -> GaussianSet:
    """Gaussians (stored axes) from the concatenated, uncompressed sections."""
    sizes = section_sizes(n, sh_degree, version)
    ends = np.cumsum(sizes)
    pos, alpha, color, scale, rot, sh = (
        np.frombuffer(body, dtype=np.uint8, count=s, offset=int(e - s)) for s, e in zip(sizes, ends)
    )
    if version == 1:
        means = pos.view("<f2").reshape(n, 3).astype(np.float64)
    else:
        b = pos.reshape(n, 3, 3).astype(np.int32)
        fixed = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
        fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
        means = fixed.astype(np.float64) / float(1 << fractional_bits)
    if version >= 3:
        xyzw = _decode_quats_smallest_three(rot)
    else:
        xyz = rot.reshape(n, 3).astype(np.float64) / 127.5 - 1.0
        xyzw = np.concatenate([xyz, np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(1)))[:, None]], axis=1)
    dim = SH_DIM[sh_degree]
    return GaussianSet(
        means=torch.from_numpy(means.astype(np.float32)),
        quats=torch.from_numpy(unit_quats(xyzw[:, [3, 0, 1, 2]]).astype(np.float32)),
        scales=torch.from_numpy(scale.reshape(n, 3).astype(np.float32) / 16.0 - 10.0),
        opacities=torch.from_numpy(logit_u8(alpha)),
        sh0=torch.from_numpy((color.reshape(n, 1, 3).astype(np.float32) / 255.0 - 0.5) / COLOR_SCALE),
        shN=torch.from_numpy((sh.reshape(n, dim, 3).astype(np.float32) - 128.0) / 128.0),
    )


def _load(path: Path) -> tuple[GaussianSet, dict]:
    if not path.is_file():
        raise SplatpackError("file does not exist", path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        version, n, sh_degree, fbits, body = _read_legacy(raw, path)
    elif raw[:4] == struct.pack("<I", MAGIC):
        version, n, sh_degree, fbits, body = _read_v4(raw, path)
    else:
        raise SplatpackError("not an SPZ file (neither gzip nor NGSP magic)", path)
    gs = decode_sections(body, version, n, sh_degree, fbits)
    if not torch.isfinite(gs.means).all():  # only f16 (v1) positions can be inf/nan
        raise SplatpackError("SPZ contains non-finite positions", path)
    return gs, {"version": version, "num_points": n, "sh_degree": sh_degree, "fractional_bits": fbits}


def load_spz(path: str | Path, *, convert_axes: bool = True) -> GaussianSet:
    """Read an SPZ file (v1–v4). With ``convert_axes`` the stored RUB frame becomes PLY's RDF."""
    gs, _ = _load(Path(path))
    if convert_axes:
        m, q, s = flip_axes(gs.means.numpy(), gs.quats.numpy(), gs.shN.numpy())
        gs = GaussianSet(torch.from_numpy(m), torch.from_numpy(q), gs.scales, gs.opacities, gs.sh0, torch.from_numpy(s))
    return gs


# ---- writing -------------------------------------------------------------------------------------
def choose_fractional_bits(means: np.ndarray, preferred: int = 12) -> int:
    """The largest ``fractional_bits ≤ preferred`` for which every position fits 24 bits (≥ 1)."""
    extent = float(np.abs(means).max()) if means.size else 0.0
    limit = (1 << 23) - 1
    fb = preferred
    while fb > 1 and extent * (1 << fb) > limit:
        fb -= 1
    return fb


def save_spz(
    gs: GaussianSet,
    path: str | Path,
    *,
    version: int = WRITE_VERSION,
    convert_axes: bool = True,
    fractional_bits: int | None = None,
) -> Path:
    """Write ``gs`` as SPZ (default v4, NGSP + zstd; ``version=3`` for the gzip container), atomically.

    Positions use 12 fractional bits (¼ mm at metre scale) unless the scene extends past
    ±2048 units, when fewer are used so that every position fits 24 bits.
    """
    path = Path(path)
    if version not in (3, 4):
        raise SplatpackError(f"SPZ version {version} cannot be written (3 or 4)", path)
    require_finite(gs, path)
    if len(gs) == 0:
        raise SplatpackError("cannot write an empty scene as SPZ (its streams would be empty)", path)
    try:
        import gsply
        from gsply.spz import MAX_FRACTIONAL_BITS
    except ImportError:  # pragma: no cover - environment dependent
        raise SplatpackError("writing SPZ needs the 'gsply' package", path) from None
    if version == 4:
        try:
            import zstandard  # noqa: F401
        except ImportError:  # pragma: no cover - environment dependent
            raise SplatpackError("writing SPZ v4 needs the 'zstandard' package (pip install zstandard)", path) from None
    g = gs.detach()
    means = g.means.float().cpu().numpy()
    quats = unit_quats(g.quats.cpu().numpy()).astype(np.float32)
    shN = g.shN.float().cpu().numpy()
    if convert_axes:
        means, quats, shN = flip_axes(means, quats, shN)
    fb = choose_fractional_bits(means) if fractional_bits is None else int(fractional_bits)
    if not 1 <= fb <= MAX_FRACTIONAL_BITS or (means.size and float(np.abs(means).max()) * (1 << fb) > (1 << 23) - 1):
        raise SplatpackError(f"positions up to {float(np.abs(means).max()):g} do not fit SPZ's 24-bit range", path)
    data = gsply.GSData.from_arrays(
        means=np.ascontiguousarray(means),
        scales=np.ascontiguousarray(g.scales.float().cpu().numpy()),
        quats=np.ascontiguousarray(quats),
        opacities=np.ascontiguousarray(g.opacities.float().cpu().numpy()),
        sh0=np.ascontiguousarray(g.sh0[:, 0, :].float().cpu().numpy()),
        shN=np.ascontiguousarray(shN) if shN.shape[1] else None,
        format="ply",
    )
    with tempfile.TemporaryDirectory(prefix="splatpack-spz-") as tmp:
        out = Path(tmp) / "out.spz"
        gsply.write_spz(out, data, version=version, fractional_bits=fb)
        blob = out.read_bytes()
    atomic_write_bytes(path, blob)
    return path


FORMAT = SceneFormat(
    name="spz",
    extensions=(".spz",),
    sniff=lambda head, path: head[:4] == b"NGSP" or head[:2] == b"\x1f\x8b",
    read=load_spz,
    write=save_spz,
)
