"""SOG textures: their size, the Morton order of the Gaussians, lossless WebP in and out, and the
bounded access to a SOG's files (zip members or siblings of ``meta.json``)."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from splatpack.core.errors import SplatpackError

MAX_SIDE = 16384  # largest WebP width/height
MAX_PIXELS = MAX_SIDE * MAX_SIDE
SH_COEFFS = {1: 3, 2: 8, 3: 15}  # SH bands → coefficients D per channel


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


def pack_texture(columns: list[np.ndarray], w: int, h: int, alpha: np.ndarray | int = 255) -> np.ndarray:
    """[h, w, 4] uint8 image with Gaussian ``i`` at pixel ``i`` (row-major): ``columns`` in R, G, B
    (as many as given, the rest zero), ``alpha`` in A; pixels past the count are zero."""
    img = np.zeros((w * h, 4), dtype=np.uint8)
    n = len(columns[0])
    for ch, col in enumerate(columns):
        img[:n, ch] = col
    img[:n, 3] = alpha
    return img.reshape(h, w, 4)


# ---- WebP --------------------------------------------------------------------------------------
def encode_webp(rgba: np.ndarray) -> bytes:
    """Lossless WebP of an [h, w, 4] uint8 image (libwebp through imagecodecs, which keeps RGB under
    zero alpha)."""
    import imagecodecs

    return bytes(imagecodecs.webp_encode(np.ascontiguousarray(rgba), lossless=True))


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


# ---- bounded reading ---------------------------------------------------------------------------
class SogFiles:
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
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as e:
                raise SplatpackError(f"not a SOG bundle (bad zip: {e})", path) from None
            self.meta_name = "meta.json"
        else:
            raise SplatpackError("file does not exist", path)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def stored_size(self, name: str) -> int:
        """Bytes that ``name`` takes in the bundle or folder (0 when it is missing or unnamed)."""
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
            return 0
        if self.zip is not None:
            try:
                return self.zip.getinfo(name).compress_size
            except KeyError:
                return 0
        file = self.folder / name
        return file.stat().st_size if file.is_file() else 0

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


def read_webp(
    files: SogFiles, name: str, min_pixels: int, max_pixels: int, width: int | None = None, data: bytes | None = None
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
