"""Downscaled copies of a capture's photos, ``images_K/``, as LLFF and nerfstudio lay them out.

Feature extraction on full-size phone photos (12 MP and more) is slow on a CPU; structure from
motion and point triangulation run as well on ``1/K``-size copies. :func:`write_downscaled`
writes each photo at ``round(W / K) × round(H / K)`` (the size the capture readers expect in an
``images_K`` folder, :func:`splatpack.captures.images.scaled_size`) with the readers' box
filter, under the same file name and format (JPEG at quality 95, so the copies stay close to
the originals). :func:`factor_for_max_size` turns a longest-side limit into the smallest such
integer ``K``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from splatpack.captures.images import image_size, resize_image, scaled_size
from splatpack.core.errors import CaptureError, SplatpackError

JPEG_QUALITY = 95
_JPEG = {".jpg", ".jpeg"}


@dataclass(frozen=True)
class DownscaleConfig:
    """``factor``: integer ``K ≥ 1`` (``images_K``); ``max_size``: instead, the smallest ``K`` that
    brings every photo's longest side to at most this many pixels. Neither: full size."""

    factor: int | None = None
    max_size: int | None = None

    def __post_init__(self) -> None:
        if self.factor is not None and self.max_size is not None:
            raise SplatpackError("give a downscale factor or a maximum size, not both")
        for name in ("factor", "max_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise SplatpackError(f"{name} must be an integer ≥ 1, got {value!r}")

    def resolve(self, paths: list[Path]) -> int:
        """The factor ``K`` for these photos (1 = use them as they are)."""
        if self.max_size is not None:
            return factor_for_max_size(paths, self.max_size)
        return self.factor or 1


def factor_for_max_size(paths: list[Path], max_size: int) -> int:
    """The smallest integer ``K`` with ``max(W, H) / K ≤ max_size`` for every image in ``paths``."""
    longest = max((max(image_size(p)) for p in paths), default=1)
    return max(1, math.ceil(longest / max_size))


def write_downscaled(paths: list[Path], folder: Path, factor: int) -> list[Path]:
    """Write ``1/factor``-size copies of ``paths`` into ``folder`` (created); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in paths:
        size = scaled_size(path, None, factor)
        try:
            with Image.open(path) as img:
                small = resize_image(img.convert("RGBA" if "A" in img.getbands() else "RGB"), size)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise CaptureError(f"cannot read image: {e}", path) from None
        dst = folder / path.name
        if path.suffix.lower() in _JPEG:
            small.convert("RGB").save(dst, quality=JPEG_QUALITY)
        else:
            small.save(dst)
        out.append(dst)
    return out
