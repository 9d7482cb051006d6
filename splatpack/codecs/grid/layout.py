"""Step 4 of the grid codec: quantised values [N, C] laid out on the grid as one image per section.

Cell (y, x) holds the Gaussian grid_index[y, x]; an empty cell copies the last occupied cell
before it in raster order, so that it costs almost nothing to predict (:class:`GridCells`).
Attributes of several planes (the 3(K−1) SH-rest channels as K−1 RGB planes; the high and low
bytes of a >8-bit attribute for the 8-bit ``webp``; for lossy JPEG XL every channel as its own
grey plane, so that libjxl's XYB colour transform does not mix them) are tiled into a
near-square mosaic of ⌈√P⌉ columns; unused tiles are zero (:class:`ImageLayout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from splatpack.compress.curve_order import snake_cells
from splatpack.spk.arrays import encode_array

__all__ = ["GridCells", "ImageLayout", "fill_source", "mosaic_shape", "packed_planes", "packed_rows", "storage_dtype"]


def packed_rows(count: int, width: int) -> int:
    """The rows of an image ``width`` wide that :func:`packed_planes` lays ``count`` values on (≥ 1)."""
    return max(1, -(-count // width))


def packed_planes(q: np.ndarray, width: int, planes: int, channels: int) -> np.ndarray:
    """q [M, planes·channels] (a subset of the Gaussians, in raster order) row-major on an image
    :func:`packed_rows` × ``width``, the last row padded with the last value, as
    [planes, H, width, channels]: for values of some Gaussians only, whose grid neighbours do not
    predict them (the basis coefficients of :mod:`.basis`)."""
    m, h = len(q), packed_rows(len(q), width)
    out = np.zeros((h * width, q.shape[1]), q.dtype)
    out[:m] = q
    if m:
        out[m:] = q[-1]
    return out.reshape(h, width, planes, channels).transpose(2, 0, 1, 3)


def fill_source(grid_index: np.ndarray) -> np.ndarray:
    """[H*W] Gaussian index shown in each cell: its own, or for an empty cell the last occupied
    cell before it in raster order (the first occupied one for leading empties)."""
    perm = grid_index.reshape(-1)
    occ = perm >= 0
    pos = np.maximum.accumulate(np.where(occ, np.arange(perm.size), -1))
    pos[pos < 0] = int(np.argmax(occ))
    return perm[pos]


def mosaic_shape(planes: int) -> tuple[int, int]:
    """(rows, columns) of the near-square mosaic of ``planes`` tiles: ⌈√P⌉ columns."""
    cols = math.ceil(math.sqrt(planes))
    return math.ceil(planes / cols), cols


def storage_dtype(bits: int) -> np.dtype:
    """uint8 up to 8 bits, uint16 above."""
    return np.dtype(np.uint8) if bits <= 8 else np.dtype(np.uint16)


@dataclass(frozen=True)
class GridCells:
    """The grid the encoder lays values out on: ``source`` [H*W] is the Gaussian each cell shows
    (:func:`fill_source` of the grid index), ``order`` [N] the Gaussians of the occupied cells in
    raster order (the order the decoder lists them in), ``snake`` [N] those of the snake's first
    N cells (:func:`~splatpack.compress.curve_order.snake_cells`), or None where one is empty."""

    source: np.ndarray
    height: int
    width: int
    order: np.ndarray
    snake: np.ndarray | None = None

    @classmethod
    def of(cls, grid_index: np.ndarray) -> GridCells:
        h, w = grid_index.shape
        flat = grid_index.reshape(-1)
        order = flat[flat >= 0]
        snake = flat[snake_cells(h, w)[: len(order)]]
        return cls(fill_source(grid_index), h, w, order, None if (snake < 0).any() else snake)

    def planes(self, q: np.ndarray, planes: int, channels: int) -> np.ndarray:
        """q [N, planes*channels] on the grid as [planes, H, W, channels]."""
        return q[self.source].reshape(self.height, self.width, planes, channels).transpose(2, 0, 1, 3)


@dataclass(frozen=True)
class ImageLayout:
    """How [P, H, W, c] planes of ``bits``-bit integers become one image for ``codec``:

    * ``split`` (webp, > 8 bits): the high bytes, then the low bytes, as 2P 8-bit planes;
    * ``gray`` (lossy jxl): every channel its own grey tile (P·c planes, channel inner), so
      that libjxl's lossy mode does not mix the channels through its XYB colour transform;
    * P' > 1 planes are tiled row-major into a mosaic of ⌈√P'⌉ columns (spare tiles zero).
    """

    codec: str
    bits: int
    distance: float = 0.0

    @property
    def split(self) -> bool:
        return self.codec == "webp" and self.bits > 8

    @property
    def gray(self) -> bool:
        return self.codec == "jxl" and self.distance > 0

    @property
    def dtype(self) -> np.dtype:
        return storage_dtype(8 if self.split else self.bits)

    def stored(self, p: int, c: int) -> tuple[int, int]:
        """(planes, channels) as stored."""
        p, c = (p * c, 1) if self.gray else (p, c)
        return (2 * p if self.split else p), c

    def image_shape(self, p: int, h: int, w: int, c: int) -> tuple[int, ...]:
        p, c = self.stored(p, c)
        rows, cols = mosaic_shape(p) if p > 1 else (1, 1)
        return (rows * h, cols * w) if c == 1 else (rows * h, cols * w, c)

    def to_image(self, planes: np.ndarray) -> np.ndarray:
        """[P, H, W, c] integer planes → the image to code ([H', W'] or [H', W', c])."""
        if self.gray:
            p, h, w, c = planes.shape
            planes = planes.transpose(0, 3, 1, 2).reshape(p * c, h, w, 1)
        if self.split:
            planes = np.concatenate([planes >> 8, planes & 0xFF])
        planes = planes.astype(self.dtype)
        p, h, w, c = planes.shape
        if p == 1:
            img = planes[0]
        else:
            rows, cols = mosaic_shape(p)
            tiles = np.zeros((rows * cols, h, w, c), planes.dtype)
            tiles[:p] = planes
            img = tiles.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
        return img[..., 0] if c == 1 else img

    def from_image(self, img: np.ndarray, p: int, h: int, w: int, c: int) -> np.ndarray:
        """Inverse of :meth:`to_image` (``img`` of :meth:`image_shape`): [P, H, W, c] uint16."""
        sp, sc = self.stored(p, c)
        img = img.reshape(img.shape[0], img.shape[1], sc)
        if sp == 1:
            planes = img[None]
        else:
            rows, cols = mosaic_shape(sp)
            planes = img.reshape(rows, h, cols, w, sc).transpose(0, 2, 1, 3, 4).reshape(rows * cols, h, w, sc)[:sp]
        planes = planes.astype(np.uint16)
        if self.split:
            half = sp // 2
            planes = (planes[:half] << 8) | planes[half:]
        if self.gray:
            planes = planes.reshape(p, c, h, w).transpose(0, 2, 3, 1)
        return planes

    def encode(self, img: np.ndarray, effort: int) -> bytes:
        """The payload of ``img`` coded with :attr:`codec` (JPEG XL at ``effort``)."""
        if self.codec == "ans":
            return encode_array(img.reshape(img.shape[0] * img.shape[1], -1), "ans")
        if self.codec == "jxl":
            return encode_array(img, "jxl", bits=8 if self.split else self.bits, distance=self.distance, effort=effort)
        return encode_array(img, self.codec)
