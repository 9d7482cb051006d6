"""The SOG reader, versions 1 and 2: ``meta.json`` checked (types, lengths, finite numbers, plain
file names, a count that a WebP image can hold, under the Gaussian ceiling and no more than the
stored images can hold: :data:`GAUSSIANS_PER_BYTE`) before any image is read, each image bounded by
:func:`~splatpack.formats.sog.textures.read_webp` (layout: :mod:`splatpack.formats.sog`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from splatpack.compress.quantise import signed_expm1
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.core.limits import check_gaussians
from splatpack.formats.sog.textures import MAX_PIXELS, SH_COEFFS, SogFiles, read_webp, webp_size
from splatpack.formats.splat import logit_u8, unit_quats

MAX_META = 16 << 20
#: the most Gaussians a byte of a real SOG's images holds (a regular lattice of identical
#: Gaussians, the most compressible scene that is still a scene, stays well below)
GAUSSIANS_PER_BYTE = 16
FILES = {"means": 2, "scales": 1, "quats": 1, "sh0": 1, "shN": 2}  # meta key → number of image files
#: SOG v1 centroid-image width (64 palette entries per row × D coefficients) → SH coefficients D
V1_CENTROID_WIDTHS = {64 * d: d for d in SH_COEFFS.values()}


# ---- meta.json ---------------------------------------------------------------------------------
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


def _load_meta(files: SogFiles) -> dict:
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


def _check_count(files: SogFiles, n: int, names: dict[str, list[str]], sh_degree: int) -> None:
    """Refuse a count above the Gaussian ceiling or above what the bundle (or the folder's named
    files) can hold."""
    if files.zip is not None:
        stored = files.path.stat().st_size
    else:
        stored = files.stored_size(files.meta_name) + sum(files.stored_size(f) for v in names.values() for f in v)
    check_gaussians(n, files.path, file_bytes=stored, per_byte=GAUSSIANS_PER_BYTE, sh_degree=sh_degree)


def _image_files(meta: dict, path: Path) -> tuple[dict[str, list[str]], dict | None]:
    """The image file names of ``means``, ``scales``, ``quats`` and ``sh0``, and the ``shN`` object
    (None when absent), both versions."""
    names = {key: _file_names(meta, key, path) for key in ("means", "scales", "quats", "sh0")}
    sh = meta.get("shN")
    if sh is not None and not isinstance(sh, dict):
        raise SplatpackError("meta.json shN is not an object", path)
    return names, sh


# ---- pixels → attributes (both versions) -------------------------------------------------------
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


def _palette_pixels(labels: np.ndarray, palette: int, d: int, path: Path) -> np.ndarray:
    """16-bit ``shN_labels`` pixels → [N, D] pixel indices into the row-major centroid image, where
    palette entry ``p``, coefficient ``j`` sits at pixel ``p·D + j`` (64·D-wide rows), both versions."""
    lab = labels[:, 0].astype(np.int64) | (labels[:, 1].astype(np.int64) << 8)
    if (lab >= palette).any():
        raise SplatpackError(f"shN labels exceed the palette of {palette} entries", path)
    return lab[:, None] * d + np.arange(d)[None, :]


def _finish(means, q, scales, opacities, sh0, shN, path: Path) -> GaussianSet:
    with np.errstate(over="ignore"):
        gs = GaussianSet.from_numpy(means, unit_quats(q), scales, opacities, sh0, shN)
    if not torch.isfinite(gs.means).all():
        raise SplatpackError("SOG means decode to non-finite positions (mins/maxs out of range)", path)
    return gs


# ---- decoders ----------------------------------------------------------------------------------
def _decode(files: SogFiles) -> GaussianSet:
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
    names, sh = _image_files(meta, path)
    if sh is not None:
        bands = _int(meta, "bands", 1, 3, path, "shN")
        palette = _int(meta, "count", 1, 65536, path, "shN")
        sh_book = _numbers(meta, "shN", "codebook", 256, path)
        names["shN"] = _file_names(meta, "shN", path)
    _check_count(files, n, names, bands if sh is not None else 0)

    lo_px, hi_px = max(n, 1), min(MAX_PIXELS, 2 * n + 65536)
    image = lambda name: read_webp(files, name, lo_px, hi_px)[:n]
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
        cent = read_webp(files, names["shN"][0], rows * 64 * d, 1024 * 64 * d, width=64 * d)
        pix = _palette_pixels(image(names["shN"][1]), palette, d, path)
        shN = sh_book[cent[pix][..., :3]]  # [N, D, 3]
    return _finish(means, q, scales, opacities, sh0, shN, path)


def _decode_v1(files: SogFiles, meta: dict) -> GaussianSet:
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
    names, sh = _image_files(meta, path)
    if sh is not None:
        sh_lo, sh_hi = (_number(sh.get(f), f"shN.{f}", path) for f in ("mins", "maxs"))
        names["shN"] = _file_names(meta, "shN", path)
    _check_count(files, n, names, 3 if sh is not None else 0)

    lo_px, hi_px = max(n, 1), min(MAX_PIXELS, 2 * n + 65536)
    image = lambda name: read_webp(files, name, lo_px, hi_px)[:n]
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
        cent = read_webp(files, names["shN"][0], 64 * d, 1024 * 64 * d, width=64 * d, data=cent_bytes)
        palette = cent.shape[0] // d
        pix = _palette_pixels(image(names["shN"][1]), palette, d, path)
        shN = lerp(cent[pix][..., :3], sh_lo, sh_hi)  # [N, D, 3]
    return _finish(means, q, scales, opacities, sh0, shN, path)


def load_sog(path: str | Path) -> GaussianSet:
    """Read SOG (version 1 or 2) from a ``.sog`` zip, a folder holding ``meta.json``, or a ``meta.json`` path."""
    files = SogFiles(Path(path))
    try:
        return _decode(files)
    finally:
        files.close()
