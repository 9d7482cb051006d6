"""Object masks of a capture: where they are found and how they are read.

A mask marks the object (white, 1) against the background (black, 0) in one image. Captures
ship them as a ``masks/`` folder beside ``images/`` with the image's name (or its stem with
``.png``; ``images_N/`` pairs with ``masks_N/``, else ``masks/`` resized), or per frame as
nerfstudio's ``mask_path``. A mask file is 8-bit grey, 1-bit, RGB (its mean) or has an alpha
channel (which is then the mask). :func:`load_mask` returns it as ``float32 [H, W]`` in [0, 1]
at the frame's size, resized and undistorted like the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from splatpack.captures.images import _open, resize_image, undistort
from splatpack.captures.types import Frame

__all__ = ["find_mask", "load_mask"]


def find_mask(image_path: Path) -> Path | None:
    """The mask file of ``image_path`` in a ``masks`` folder beside its folder, or None."""
    folder = image_path.parent
    dirs = [folder.with_name("masks")]
    if folder.name.startswith("images_"):
        dirs.insert(0, folder.with_name("masks_" + folder.name[len("images_") :]))
    for d in dirs:
        for name in (image_path.name, image_path.stem + ".png", image_path.name + ".png"):
            if (d / name).is_file():
                return (d / name).absolute()
    return None


def load_mask(frame: Frame) -> np.ndarray | None:
    """The frame's mask, ``float32 [height, width]`` in [0, 1]; None when it has none."""
    if frame.mask_path is None:
        return None
    img = _open(frame.mask_path)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    img = img.convert("RGBA").getchannel("A") if has_alpha else img.convert("L")
    out = np.asarray(resize_image(img, (frame.width, frame.height)), dtype=np.float32) / 255.0
    if frame.distortion is not None:
        out = np.clip(undistort(out[..., None], frame)[..., 0], 0.0, 1.0)
    return out
