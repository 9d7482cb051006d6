"""Step 4 of the grid codec (``splatpack.codecs.grid.layout``): planes ↔ one image, for every
layout (one plane, a mosaic, split bytes for WebP, grey tiles for lossy JPEG XL), and the cells
an empty grid cell copies."""

from __future__ import annotations

import numpy as np
import pytest

from splatpack.codecs.grid.layout import (
    GridCells,
    ImageLayout,
    fill_source,
    mosaic_shape,
    packed_planes,
    packed_rows,
    storage_dtype,
)


@pytest.mark.parametrize(
    "codec, bits, distance, p, c",
    [
        ("jxl", 8, 0.0, 1, 3),
        ("png", 12, 0.0, 5, 3),
        ("webp", 14, 0.0, 3, 3),
        ("webp", 6, 0.0, 2, 1),
        ("jxl", 10, 1.0, 2, 3),
        ("ans", 16, 0.0, 15, 3),
        ("jxl", 9, 0.5, 1, 1),
    ],
)
def test_image_round_trip(codec, bits, distance, p, c):
    rng = np.random.default_rng(bits + p)
    h, w = 5, 7
    planes = rng.integers(0, 1 << bits, size=(p, h, w, c)).astype(np.uint16)
    layout = ImageLayout(codec, bits, distance)
    img = layout.to_image(planes)
    assert img.shape == layout.image_shape(p, h, w, c) and img.dtype == layout.dtype
    back = layout.from_image(img, p, h, w, c)
    assert back.dtype == np.uint16 and np.array_equal(back, planes)
    stored_planes, stored_channels = layout.stored(p, c)
    assert stored_channels == (1 if layout.gray else c)
    assert stored_planes == (2 if layout.split else 1) * (p * c if layout.gray else p)


def test_layout_kinds_and_mosaic():
    assert ImageLayout("webp", 9).split and not ImageLayout("webp", 8).split and not ImageLayout("png", 16).split
    assert ImageLayout("jxl", 8, 1.0).gray and not ImageLayout("jxl", 8).gray
    assert ImageLayout("webp", 16).dtype == np.uint8 and ImageLayout("png", 9).dtype == np.uint16
    assert storage_dtype(8) == np.uint8 and storage_dtype(9) == np.uint16
    assert [mosaic_shape(p) for p in (1, 2, 4, 5, 15, 16, 17)] == [
        (1, 1),
        (1, 2),
        (2, 2),
        (2, 3),
        (4, 4),
        (4, 4),
        (4, 5),
    ]


def test_empty_cells_copy_the_last_occupied_one():
    gi = np.array([[-1, 2, 0], [-1, -1, 1]])
    assert fill_source(gi).tolist() == [2, 2, 0, 0, 0, 1]
    cells = GridCells.of(gi)
    assert (cells.height, cells.width) == (2, 3)
    q = np.array([[10, 11], [20, 21], [30, 31]])  # Gaussian i: two channels
    planes = cells.planes(q, 2, 1)  # [2 planes, H, W, 1]
    assert planes.shape == (2, 2, 3, 1)
    assert planes[0, ..., 0].tolist() == [[30, 30, 10], [10, 10, 20]]
    assert planes[1, ..., 0].tolist() == [[31, 31, 11], [11, 11, 21]]


def test_packed_planes_lay_rows_out_row_major_and_pad_with_the_last():
    q = np.arange(7 * 2, dtype=np.uint16).reshape(7, 2)
    planes = packed_planes(q, 3, 2, 1)
    assert planes.shape == (2, packed_rows(7, 3), 3, 1) == (2, 3, 3, 1)
    flat = planes.transpose(1, 2, 0, 3).reshape(-1, 2)
    assert np.array_equal(flat[:7], q) and np.array_equal(flat[7:], np.repeat(q[-1:], 2, 0))
    assert packed_rows(0, 5) == 1 and packed_rows(10, 5) == 2
