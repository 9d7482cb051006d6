"""Image files of a capture: reading, resizing, undistortion, and the helpers every reader shares.

* :func:`load_image` returns ``float32 [H, W, 3|4]`` in ``[0, 1]`` at exactly the frame's size
  (alpha kept when the file has it). A file of another size is resized with PIL's box (area)
  filter when shrinking, Lanczos when enlarging (Pillow resamples RGBA premultiplied).
* Undistortion follows COLMAP/OpenCV: pixel centres at integer + 0.5; for every pixel of the
  pinhole target ``K`` the ray is distorted with the radial-tangential model
  ``x_d = x (1 + k1 r² + k2 r⁴) + 2 p1 x y + p2 (r² + 2 x²)`` (and symmetrically for ``y``) and
  projected with ``K_src``; the source is sampled bilinearly, clamping at the border.
* Helpers shared by the readers: :func:`intrinsics_matrix`; image folders via :func:`image_dirs`,
  :func:`pick_image_dir` and :func:`scaled_size` (a pre-downscaled ``images_N`` folder is used
  as is, otherwise images are resized on load); :func:`split_frames` (every ``test_every``-th
  frame is a test frame, as in gsplat and nerfstudio).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image
from scipy.ndimage import map_coordinates

from splatpack.captures.types import Frame
from splatpack.core.errors import CaptureError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
T = TypeVar("T")


def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise CaptureError("cannot read image: file not found", path) from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise CaptureError(f"cannot read image: {e}", path) from None


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file, reading only its header."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        raise CaptureError("cannot read image: file not found", path) from None
    except (OSError, ValueError) as e:
        raise CaptureError(f"cannot read image: {e}", path) from None


def resize_image(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to ``(width, height)``: box (area) filter when shrinking, Lanczos when enlarging."""
    if img.size == tuple(size):
        return img
    shrink = size[0] <= img.width and size[1] <= img.height
    return img.resize(tuple(size), Image.Resampling.BOX if shrink else Image.Resampling.LANCZOS)


def undistort(image: np.ndarray, frame: Frame) -> np.ndarray:
    """Resample a distorted ``[H, W, C]`` image (at the frame's size) to the frame's pinhole ``K``."""
    d = frame.distortion
    assert d is not None
    K, Ks = frame.K, frame.K if d.K_src is None else d.K_src
    h, w = image.shape[:2]
    v, u = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    x, y = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    r2 = x * x + y * y
    radial = 1.0 + d.k1 * r2 + d.k2 * r2 * r2
    xd = x * radial + 2 * d.p1 * x * y + d.p2 * (r2 + 2 * x * x)
    yd = y * radial + d.p1 * (r2 + 2 * y * y) + 2 * d.p2 * x * y
    coords = np.stack([Ks[1, 1] * yd + Ks[1, 2] - 0.5, Ks[0, 0] * xd + Ks[0, 2] - 0.5])
    out = np.empty_like(image)
    for c in range(image.shape[2]):
        out[..., c] = map_coordinates(image[..., c], coords, order=1, mode="nearest")
    return out


def load_image(frame: Frame) -> np.ndarray:
    """The frame's image as ``float32 [height, width, 3|4]`` in ``[0, 1]``, resized and undistorted
    (or the one it holds in memory, as it is)."""
    if frame.image is not None:
        return np.asarray(frame.image, dtype=np.float32)
    img = _open(frame.image_path)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    img = img.convert("RGBA" if has_alpha else "RGB")
    img = resize_image(img, (frame.width, frame.height))
    out = np.asarray(img, dtype=np.float32) / 255.0
    if frame.distortion is not None:
        out = np.clip(undistort(out, frame), 0.0, 1.0)
    return out


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """The 3×3 pinhole ``K`` (float64)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def image_dirs(base: Path, downscale: int) -> list[Path]:
    """Candidate image folders of a capture at ``base``: ``images_{downscale}``, ``images``, ``images_N``."""
    numbered = sorted(base.glob("images_*"), key=lambda p: (len(p.name), p.name))
    return [base / f"images_{downscale}"] * (downscale > 1) + [base / "images"] + numbered


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _target(full: tuple[int, int], downscale: int) -> tuple[int, int]:
    if not isinstance(downscale, (int, np.integer)) or isinstance(downscale, bool) or downscale < 1:
        raise CaptureError(f"downscale must be a positive integer, got {downscale!r}")
    return max(1, round(full[0] / downscale)), max(1, round(full[1] / downscale))


def _close(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] - b[0]) <= 1 and abs(a[1] - b[1]) <= 1


def scaled_size(path: Path, full: tuple[int, int] | None, downscale: int) -> tuple[int, int]:
    """Frame size of ``path`` for a camera of ``full`` size (default: the file's) at ``1/downscale``.

    The file's own size when it is already within a pixel of the target (a pre-downscaled
    ``images_N`` folder), else the rounded target (the image is resized on load).
    """
    size = image_size(path)
    target = _target(full or size, downscale)
    return size if _close(size, target) else target


def pick_image_dir(
    candidates: list[Path], full: tuple[int, int], downscale: int, name: str | None, where: Path
) -> Path:
    """The folder to read a capture's images from.

    Among existing ``candidates`` that hold ``name`` (default: any image), one whose images
    already have the target size wins; otherwise the smallest one that is at least as large
    (resized down on load). Images are never enlarged: no fitting folder raises ``CaptureError``.
    """
    target, tried, fits = _target(full, downscale), [], []
    for i, folder in enumerate(dict.fromkeys(c.absolute() for c in candidates)):
        if not folder.is_dir():
            continue
        files = [folder / name] if name else list_images(folder)[:1]
        if not files or not files[0].is_file():
            tried.append(f"{folder} (no {name or 'images'})")
            continue
        size = image_size(files[0])
        tried.append(f"{folder} ({size[0]}x{size[1]})")
        if _close(size, target) or (size[0] >= target[0] and size[1] >= target[1]):
            fits.append((not _close(size, target), size[0] * size[1], i, folder))
    if not fits:
        looked = "; ".join(tried) or ", ".join(str(c) for c in candidates)
        raise CaptureError(
            f"no image folder with images of at least {target[0]}x{target[1]} (downscale {downscale})"
            f" found; looked in: {looked}",
            where,
        )
    return min(fits)[3]


def split_frames(frames: list[T], test_every: int, where: Path) -> tuple[list[T], list[T]]:
    """``(train, test)``: frame ``i`` is a test frame when ``i % test_every == 0``; ``0`` = no test split."""
    if test_every < 0 or test_every == 1:
        raise CaptureError(f"test_every must be 0 (no test split) or at least 2, got {test_every}")
    test = [f for i, f in enumerate(frames) if test_every and i % test_every == 0]
    train = [f for i, f in enumerate(frames) if not (test_every and i % test_every == 0)]
    if not train:
        raise CaptureError(f"no training frames left: {len(frames)} frame(s), test_every={test_every}", where)
    return train, test
