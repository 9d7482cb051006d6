"""Writing rendered images: a float image [H, W, C] in [0, 1] as 8-bit pixels, and as a PNG file
(atomically, :mod:`splatpack.core.atomic`)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from splatpack.core.atomic import atomic_write

__all__ = ["save_png", "to_uint8"]


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """``img`` clamped to [0, 1] and rounded to 0..255 (round half up)."""
    return (img.detach().clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def save_png(path: str | Path, img: torch.Tensor) -> None:
    """Write ``img`` [H, W, 3|4] in [0, 1] to ``path`` as an 8-bit PNG."""
    with atomic_write(path, "wb") as f:
        f.write(iio.imwrite("<bytes>", to_uint8(img), extension=".png"))
