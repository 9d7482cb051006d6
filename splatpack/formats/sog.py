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
:func:`morton_order`), builds the 256-entry codebooks by 1-D k-means (Lloyd from a companding
start that keeps the minimum and maximum; exact when a stream has ≤ 256 distinct values) and
the SH palette by k-means on the ``3·D``-vectors (``min(64, 2^⌊log2(N/1024)⌋)·1024`` entries
as splat-transform, at most ``N``; exact when there are no more distinct vectors), and writes
lossless WebP (libwebp through imagecodecs, which keeps RGB under zero alpha). A reader
returns the Gaussians in file order.

Reading checks ``meta.json`` (types, lengths, finite numbers, plain file names), refuses a
count that no WebP image can hold (16384² pixels) before reading any image, reads each image
with a byte limit and checks its size from the WebP header against the count *before*
decoding it. Errors are :class:`~splatpack.core.errors.SplatpackError`.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from splatpack.compress.kmeans import kmeans_1d, vector_quantise
from splatpack.compress.quantise import signed_expm1, signed_log1p, smallest_three
from splatpack.core import GaussianSet
from splatpack.core.atomic import atomic_write_bytes
from splatpack.core.errors import SplatpackError
from splatpack.core.frames import canonical_gaussians
from splatpack.formats.base import SceneFormat
from splatpack.formats.splat import logit_u8, quantize_u8, require_finite, unit_quats

MAX_SIDE = 16384  # largest WebP width/height
MAX_PIXELS = MAX_SIDE * MAX_SIDE
MAX_META = 16 << 20
SH_COEFFS = {1: 3, 2: 8, 3: 15}
FILES = {"means": 2, "scales": 1, "quats": 1, "sh0": 1, "shN": 2}


# ---- layout ------------------------------------------------------------------------------------
def texture_size(n: int) -> tuple[int, int]:
    """``(width, height)`` of the per-Gaussian textures for ``n`` Gaussians."""
    w = max(4, math.ceil(math.sqrt(n) / 4) * 4)
    return w, max(4, math.ceil(n / w / 4) * 4)


def sh_palette_size(n: int) -> int:
    """splat-transform's SH palette size for ``n`` Gaussians, capped at ``n``."""
    if n <= 0:
        return 0
    return max(1, min(n, int(min(64.0, 2.0 ** math.floor(math.log2(n / 1024))) * 1024)))


def _part1by2(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64) & np.uint64(0x3FF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x030000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x0300F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x030C30C3)
    return (v | (v << np.uint64(2))) & np.uint64(0x09249249)


def morton_order(means: np.ndarray) -> np.ndarray:
    """Permutation that sorts positions [N, 3] along a 30-bit Morton (Z-order) curve of their box."""
    m = np.asarray(means, dtype=np.float64)
    if len(m) == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = m.min(axis=0), m.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.clip(np.floor((m - lo) / span * 1023.0), 0, 1023)
    code = _part1by2(q[:, 0]) | (_part1by2(q[:, 1]) << np.uint64(1)) | (_part1by2(q[:, 2]) << np.uint64(2))
    return np.argsort(code, kind="stable")


# ---- writing -----------------------------------------------------------------------------------
def _webp(rgba: np.ndarray) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.webp_encode(np.ascontiguousarray(rgba), lossless=True))


def _texture(columns: list[np.ndarray], w: int, h: int, alpha: np.ndarray | int = 255) -> np.ndarray:
    img = np.zeros((w * h, 4), dtype=np.uint8)
    n = len(columns[0])
    for ch, col in enumerate(columns):
        img[:n, ch] = col
    img[:n, 3] = alpha
    return img.reshape(h, w, 4)


def encode_sog(
    gs: GaussianSet, *, iterations: int = 10, seed: int = 0, canonical_frames: bool = True
) -> dict[str, bytes]:
    """File name → bytes of a SOG v2 encoding of ``gs`` (``meta.json`` and the WebP images).

    ``canonical_frames``: store each Gaussian in its canonical local frame (scales decreasing,
    |w| largest; the same covariance, :mod:`splatpack.core.frames`), which any SOG reader decodes
    as usual and which codes smaller (README)."""
    g = canonical_gaussians(gs.detach()) if canonical_frames else gs.detach()
    n = len(g)
    order = morton_order(g.means.double().cpu().numpy())
    g = g.subset(torch.from_numpy(order))
    w, h = texture_size(n)
    files: dict[str, bytes] = {}

    lt = signed_log1p(g.means.double().cpu().numpy())
    mins = lt.min(axis=0) if n else np.zeros(3)
    maxs = lt.max(axis=0) if n else np.zeros(3)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    u16 = np.clip(np.rint((lt - mins) / span * 65535.0), 0, 65535).astype(np.uint16)
    files["means_l.webp"] = _webp(_texture([u16[:, i] & 0xFF for i in range(3)], w, h))
    files["means_u.webp"] = _webp(_texture([u16[:, i] >> 8 for i in range(3)], w, h))

    small, big = smallest_three(unit_quats(g.quats.cpu().numpy()))
    quat_bytes = quantize_u8(255.0 * (small * np.sqrt(2.0) * 0.5 + 0.5))
    files["quats.webp"] = _webp(_texture([quat_bytes[:, i] for i in range(3)], w, h, 252 + big.astype(np.uint8)))

    scale_book, scale_lab = kmeans_1d(g.scales.double().cpu().numpy(), 256, iterations)
    files["scales.webp"] = _webp(_texture([scale_lab[:, i] for i in range(3)], w, h))

    dc_book, dc_lab = kmeans_1d(g.sh0[:, 0, :].double().cpu().numpy(), 256, iterations)
    alpha = quantize_u8(torch.sigmoid(g.opacities.double()).cpu().numpy() * 255.0)
    files["sh0.webp"] = _webp(_texture([dc_lab[:, i] for i in range(3)], w, h, alpha))

    meta: dict = {
        "version": 2,
        "asset": {"generator": "splatpack"},
        "count": n,
        "means": {
            "mins": [float(v) for v in mins],
            "maxs": [float(v) for v in maxs],
            "files": ["means_l.webp", "means_u.webp"],
        },
        "scales": {"codebook": [float(v) for v in scale_book], "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": [float(v) for v in dc_book], "files": ["sh0.webp"]},
    }
    bands = g.sh_degree
    if bands > 0 and n > 0:
        d = SH_COEFFS[bands]
        # palette vectors are channel-major, as splat-transform's f_rest columns: R_0..R_{D-1}, G_.., B_..
        vec = g.shN.float().cpu().numpy().transpose(0, 2, 1).reshape(n, 3 * d)
        centroids, labels = vector_quantise(vec, sh_palette_size(n), iterations, seed)
        book, clab = kmeans_1d(centroids, 256, iterations)  # clab [P, 3D]
        p = len(centroids)
        rows = math.ceil(p / 64)
        cimg = np.zeros((rows * 64 * d, 4), dtype=np.uint8)
        cimg[: p * d, :3] = clab.reshape(p, 3, d).transpose(0, 2, 1).reshape(p * d, 3)
        cimg[: p * d, 3] = 255
        files["shN_centroids.webp"] = _webp(cimg.reshape(rows, 64 * d, 4))
        lab16 = labels.astype(np.uint16)
        files["shN_labels.webp"] = _webp(_texture([lab16 & 0xFF, lab16 >> 8], w, h))
        meta["shN"] = {
            "count": p,
            "bands": bands,
            "codebook": [float(v) for v in book],
            "files": ["shN_centroids.webp", "shN_labels.webp"],
        }
    files["meta.json"] = json.dumps(meta).encode()
    return files


def save_sog(gs: GaussianSet, path: str | Path, *, iterations: int = 10, seed: int = 0) -> Path:
    """Write ``gs`` as SOG v2: a zip bundle for ``*.sog``, else ``meta.json`` and images (next to
    ``path`` when it names a ``.json`` file, inside the folder ``path`` otherwise). Atomic per file."""
    path = Path(path)
    require_finite(gs, path)
    files = encode_sog(gs, iterations=iterations, seed=seed)
    if path.suffix.lower() == ".sog":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("meta.json", files.pop("meta.json"))
            for name, data in files.items():
                zf.writestr(name, data)
        atomic_write_bytes(path, buf.getvalue())
        return path
    meta_path = path if path.suffix.lower() == ".json" else path / "meta.json"
    meta = files.pop("meta.json")
    for name, data in files.items():
        atomic_write_bytes(meta_path.parent / name, data)
    atomic_write_bytes(meta_path, meta)  # last: meta.json never names an image not yet written
    return path


# ---- reading -----------------------------------------------------------------------------------
class _Files:
    """The files of a SOG: zip members or siblings of ``meta.json``, read with a size limit."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.folder = path
            self.meta_name = "meta.json"
        elif path.is_file() and path.suffix.lower() == ".json":
            self.folder, self.meta_name = path.parent, path.name
        elif path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
                raise SplatpackError(f"not a SOG bundle (bad zip: {e})", path) from None
            self.meta_name = "meta.json"
        else:
            raise SplatpackError("file does not exist", path)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def read(self, name: str, limit: int) -> bytes:
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
            raise SplatpackError(f"SOG meta.json names an invalid file {name!r}", self.path)
        try:
            if self.zip is not None:
                try:
                    info = self.zip.getinfo(name)
                except KeyError:
                    raise SplatpackError(f"SOG bundle has no '{name}'", self.path) from None
                if info.file_size > limit:
                    raise SplatpackError(
                        f"'{name}' is {info.file_size} bytes, more than the count allows ({limit})", self.path
                    )
                with self.zip.open(info) as f:
                    data = f.read(limit + 1)
            else:
                file = self.folder / name
                if not file.is_file():
                    raise SplatpackError(f"SOG file '{name}' is missing", self.path)
                if file.stat().st_size > limit:
                    raise SplatpackError(f"'{name}' is larger than the count allows ({limit} bytes)", self.path)
                data = file.read_bytes()
        except SplatpackError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as e:
            raise SplatpackError(f"cannot read '{name}': {type(e).__name__}: {e}", self.path) from None
        except Exception as e:  # zlib.error and other codec errors from corrupt members
            raise SplatpackError(f"cannot read '{name}': {type(e).__name__}: {e}", self.path) from None
        if len(data) > limit:
            raise SplatpackError(f"'{name}' is larger than the count allows ({limit} bytes)", self.path)
        return data


def webp_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a WebP header (VP8L, VP8X or VP8), or None if it is not WebP."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    kind = data[12:16]
    if kind == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _image(
    files: _Files, name: str, min_pixels: int, max_pixels: int, width: int | None = None, data: bytes | None = None
) -> np.ndarray:
    """Decode one WebP (``data``, or read from ``files``) as [pixels, 4] uint8 after checking its
    header size against the limits."""
    if data is None:
        data = files.read(name, 5 * max_pixels + (1 << 20))
    size = webp_size(data)
    if size is None:
        raise SplatpackError(f"'{name}' is not a WebP image", files.path)
    w, h = size
    if not min_pixels <= w * h <= max_pixels or (width is not None and w != width):
        raise SplatpackError(f"'{name}' is {w}×{h}, which does not fit the count in meta.json", files.path)
    try:
        import imagecodecs

        img = np.asarray(imagecodecs.webp_decode(data))
    except Exception as e:  # imagecodecs raises its own WebpError (and others) on corrupt data
        raise SplatpackError(f"cannot decode '{name}': {type(e).__name__}: {e}", files.path) from None
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[:2] != (h, w) or img.shape[2] not in (3, 4):
        raise SplatpackError(f"'{name}' decodes to an unexpected image {img.shape}", files.path)
    if img.shape[2] == 3:  # libwebp drops an all-opaque alpha channel
        img = np.concatenate([img, np.full((h, w, 1), 255, np.uint8)], axis=2)
    return img.reshape(h * w, 4)


def _numbers(meta: dict, key: str, field: str, length: int, path: Path) -> np.ndarray:
    v = meta.get(key, {}).get(field) if isinstance(meta.get(key), dict) else None
    if (
        not isinstance(v, list)
        or len(v) != length
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    ):
        raise SplatpackError(f"meta.json {key}.{field} must be a list of {length} numbers", path)
    a = np.array(v, dtype=np.float64)
    if not np.isfinite(a).all() or (np.abs(a) > np.finfo(np.float32).max).any():
        raise SplatpackError(f"meta.json {key}.{field} has non-finite numbers", path)
    return a


def _number(v, name: str, path: Path) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not abs(v) <= np.finfo(np.float32).max:
        raise SplatpackError(f"meta.json {name} must be a finite number", path)
    return float(v)


def _file_names(meta: dict, key: str, path: Path) -> list[str]:
    v = meta[key].get("files") if isinstance(meta.get(key), dict) else None
    if not isinstance(v, list) or len(v) != FILES[key] or not all(isinstance(s, str) for s in v):
        raise SplatpackError(f"meta.json {key}.files must list {FILES[key]} file name(s)", path)
    return v


def _int(meta: dict, key: str, lo: int, hi: int, path: Path, parent: str | None = None) -> int:
    v = (meta.get(parent, {}) if parent else meta).get(key)
    name = f"{parent}.{key}" if parent else key
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise SplatpackError(f"meta.json {name} must be an integer in [{lo}, {hi}], got {str(v)[:40]}", path)
    return v


def _load_meta(files: _Files) -> dict:
    path = files.path
    try:
        meta = json.loads(files.read(files.meta_name, MAX_META).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise SplatpackError(f"meta.json is not valid JSON: {e}", path) from None
    if not isinstance(meta, dict):
        raise SplatpackError("meta.json is not a JSON object", path)
    for key in ("means", "scales", "quats", "sh0"):
        if not isinstance(meta.get(key), dict):
            raise SplatpackError(f"meta.json has no '{key}' object", path)
    return meta


def _decode_means(lo: np.ndarray, hi: np.ndarray, mins: np.ndarray, maxs: np.ndarray) -> np.ndarray:
    """16-bit ``means_l``/``means_u`` pixels → positions (the inverse of sign·log1p), both versions."""
    u = (lo[:, :3].astype(np.uint16) | (hi[:, :3].astype(np.uint16) << 8)).astype(np.float64) / 65535.0
    v = mins + np.where(maxs - mins != 0, maxs - mins, 1.0) * u
    with np.errstate(over="ignore"):
        return signed_expm1(v)


def _decode_quats(qimg: np.ndarray, path: Path) -> np.ndarray:
    """Smallest-three quaternion pixels (tag 252 + index of the largest in A), both versions."""
    n = qimg.shape[0]
    tag = qimg[:, 3].astype(np.int64) - 252
    if ((tag < 0) | (tag > 3)).any():
        raise SplatpackError("quats image has a component tag outside 252–255", path)
    small = (qimg[:, :3].astype(np.float64) / 255.0 * 2.0 - 1.0) / np.sqrt(2.0)
    q = np.zeros((n, 4))
    others = np.array([[i for i in range(4) if i != b] for b in range(4)])
    q[np.arange(n)[:, None], others[tag]] = small
    q[np.arange(n), tag] = np.sqrt(np.maximum(0.0, 1.0 - (small * small).sum(axis=1)))
    return q


def _finish(means, q, scales, opacities, sh0, shN, path: Path) -> GaussianSet:
    with np.errstate(over="ignore"):
        gs = GaussianSet.from_numpy(means, unit_quats(q), scales, opacities, sh0, shN)
    if not torch.isfinite(gs.means).all():
        raise SplatpackError("SOG means decode to non-finite positions (mins/maxs out of range)", path)
    return gs


def _decode(files: _Files) -> GaussianSet:
    path = files.path
    meta = _load_meta(files)
    if "version" not in meta:
        return _decode_v1(files, meta)
    if meta.get("version") != 2:
        raise SplatpackError(
            f"unsupported SOG version {str(meta.get('version'))[:20]} (versions 1 and 2 are read)", path
        )
    n = _int(meta, "count", 0, MAX_PIXELS, path)  # no WebP image holds more pixels than this
    mins = _numbers(meta, "means", "mins", 3, path)
    maxs = _numbers(meta, "means", "maxs", 3, path)
    scale_book = _numbers(meta, "scales", "codebook", 256, path)
    dc_book = _numbers(meta, "sh0", "codebook", 256, path)
    names = {key: _file_names(meta, key, path) for key in ("means", "scales", "quats", "sh0")}
    sh = meta.get("shN")
    if sh is not None:
        if not isinstance(sh, dict):
            raise SplatpackError("meta.json shN is not an object", path)
        bands = _int(meta, "bands", 1, 3, path, "shN")
        palette = _int(meta, "count", 1, 65536, path, "shN")
        sh_book = _numbers(meta, "shN", "codebook", 256, path)
        names["shN"] = _file_names(meta, "shN", path)

    lo_px, hi_px = max(n, 1), min(MAX_PIXELS, 2 * n + 65536)
    image = lambda name: _image(files, name, lo_px, hi_px)[:n]
    means = _decode_means(image(names["means"][0]), image(names["means"][1]), mins, maxs)
    q = _decode_quats(image(names["quats"][0]), path)
    scales = scale_book[image(names["scales"][0])[:, :3]]
    cimg = image(names["sh0"][0])
    sh0 = dc_book[cimg[:, :3]]
    opacities = logit_u8(cimg[:, 3])

    shN = np.zeros((n, 0, 3))
    if sh is not None:
        d = SH_COEFFS[bands]
        rows = math.ceil(palette / 64)
        cent = _image(files, names["shN"][0], rows * 64 * d, 1024 * 64 * d, width=64 * d)
        labels = image(names["shN"][1])
        lab = labels[:, 0].astype(np.int64) | (labels[:, 1].astype(np.int64) << 8)
        if (lab >= palette).any():
            raise SplatpackError(f"shN labels exceed the palette of {palette} entries", path)
        # palette entry p, coefficient j sits at pixel p·D + j of the row-major centroid image
        pix = lab[:, None] * d + np.arange(d)[None, :]
        shN = sh_book[cent[pix][..., :3]]  # [N, D, 3]
    return _finish(means, q, scales, opacities, sh0, shN, path)


#: SOG v1 centroid-image width (64 palette entries per row × D coefficients) → SH coefficients D
V1_CENTROID_WIDTHS = {64 * d: d for d in SH_COEFFS.values()}


def _decode_v1(files: _Files, meta: dict) -> GaussianSet:
    """SOG version 1 (the legacy layout; no ``version`` key): per-channel 8-bit linear ranges
    instead of codebooks. ``means.shape[0]`` is the count; ``scales`` RGB lerp ``mins``..``maxs``
    (log-scales); ``sh0`` RGBA lerp ``mins``..``maxs`` of (DC r, g, b, opacity logit); ``shN``
    (optional) ``files = [centroids, labels]``, one scalar ``mins``/``maxs`` range for every
    centroid byte, D from the centroid image's width (64·D), 64 entries per row; means and quats
    as in version 2. As splat-transform's ``read-sog-v1.ts`` and the PlayCanvas engine."""
    path = files.path
    shape = meta["means"].get("shape")
    if not isinstance(shape, list) or not shape or not isinstance(shape[0], int) or isinstance(shape[0], bool):
        raise SplatpackError("meta.json means.shape must be a list starting with the Gaussian count (SOG v1)", path)
    n = shape[0]
    if not 0 <= n <= MAX_PIXELS:
        raise SplatpackError(f"meta.json means.shape[0] must be an integer in [0, {MAX_PIXELS}], got {n}", path)
    mins, maxs = _numbers(meta, "means", "mins", 3, path), _numbers(meta, "means", "maxs", 3, path)
    s_lo, s_hi = _numbers(meta, "scales", "mins", 3, path), _numbers(meta, "scales", "maxs", 3, path)
    c_lo, c_hi = _numbers(meta, "sh0", "mins", 4, path), _numbers(meta, "sh0", "maxs", 4, path)
    names = {key: _file_names(meta, key, path) for key in ("means", "scales", "quats", "sh0")}
    sh = meta.get("shN")
    if sh is not None:
        if not isinstance(sh, dict):
            raise SplatpackError("meta.json shN is not an object", path)
        sh_lo, sh_hi = (_number(sh.get(f), f"shN.{f}", path) for f in ("mins", "maxs"))
        names["shN"] = _file_names(meta, "shN", path)

    lo_px, hi_px = max(n, 1), min(MAX_PIXELS, 2 * n + 65536)
    image = lambda name: _image(files, name, lo_px, hi_px)[:n]
    lerp = lambda px, lo, hi: lo + (hi - lo) * (px.astype(np.float64) / 255.0)
    means = _decode_means(image(names["means"][0]), image(names["means"][1]), mins, maxs)
    q = _decode_quats(image(names["quats"][0]), path)
    scales = lerp(image(names["scales"][0])[:, :3], s_lo, s_hi)
    c = lerp(image(names["sh0"][0]), c_lo, c_hi)
    sh0, opacities = c[:, :3], c[:, 3]

    shN = np.zeros((n, 0, 3))
    if sh is not None:
        cent_bytes = files.read(names["shN"][0], 5 * 1024 * 64 * 15 + (1 << 20))
        size = webp_size(cent_bytes)
        if size is None or size[0] not in V1_CENTROID_WIDTHS:
            raise SplatpackError(
                f"'{names['shN'][0]}' must be a WebP image 192, 512 or 960 pixels wide (SOG v1 shN centroids)", path
            )
        d = V1_CENTROID_WIDTHS[size[0]]
        cent = _image(files, names["shN"][0], 64 * d, 1024 * 64 * d, width=64 * d, data=cent_bytes)
        palette = cent.shape[0] // d
        labels = image(names["shN"][1])
        lab = labels[:, 0].astype(np.int64) | (labels[:, 1].astype(np.int64) << 8)
        if (lab >= palette).any():
            raise SplatpackError(f"shN labels exceed the palette of {palette} entries", path)
        pix = lab[:, None] * d + np.arange(d)[None, :]  # entry p, coefficient j: pixel p·D + j (64·D wide rows)
        shN = lerp(cent[pix][..., :3], sh_lo, sh_hi)  # [N, D, 3]
    return _finish(means, q, scales, opacities, sh0, shN, path)


def load_sog(path: str | Path) -> GaussianSet:
    """Read SOG (version 1 or 2) from a ``.sog`` zip, a folder holding ``meta.json``, or a ``meta.json`` path."""
    files = _Files(Path(path))
    try:
        return _decode(files)
    finally:
        files.close()


def _sniff(head: bytes, path: Path) -> bool:
    if path.is_dir():
        return (path / "meta.json").is_file()
    return head[:4] == b"PK\x03\x04" or path.suffix.lower() == ".json"


FORMAT = SceneFormat(name="sog", extensions=(".sog", ".json"), sniff=_sniff, read=load_sog, write=save_sog)
