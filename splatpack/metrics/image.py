"""Full-reference image metrics: PSNR and SSIM.

Image layout
------------
Every function takes ``img`` and ``ref`` as float tensors with values in [0, 1], either

* ``[H, W, 3]`` -- one image, channels last (how captures and renders are stored), or
* ``[B, 3, H, W]`` -- a batch, channels first (how torch convolutions want it).

A 3-D tensor is always read as ``[H, W, C]`` and a 4-D one as ``[B, C, H, W]``; both inputs
must have the same shape. Any channel count works for PSNR/SSIM (LPIPS needs 3).

SSIM follows Wang, Bovik, Sheikh & Simoncelli, "Image Quality Assessment: From Error
Visibility to Structural Similarity", IEEE TIP 13(4), 2004, eq. (13), with the constants and
window of the 3D Gaussian Splatting evaluation (Kerbl et al. 2023, ``utils/loss_utils.py``):
an 11x11 Gaussian window with sigma 1.5 (normalised to sum 1), zero padding of 5 so the map
has the input's size, ``C1 = 0.01**2``, ``C2 = 0.03**2`` (dynamic range L = 1), channels
filtered independently and the map averaged over everything. The 2-D window is the outer
product of a 1-D one, so it is applied as two grouped 1-D convolutions (exactly equal, with
zero padding, to the 2-D convolution, and several times cheaper), on channels-last tensors,
which oneDNN's depthwise kernels handle much faster on CPU. :func:`ssim` is differentiable and
is the same function used for the D-SSIM training loss ``1 - ssim(img, ref)``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

__all__ = ["PSNR_CAP", "gaussian_window", "mean_psnr_ssim", "psnr", "ssim", "ssim_map", "to_bchw"]

WINDOW_SIZE = 11
SIGMA = 1.5
C1 = 0.01**2
C2 = 0.03**2
PSNR_CAP = 100.0  # dB, what mean_psnr_ssim counts for identical images (a lossless round trip)


def to_bchw(img: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``img, ref`` as ``[B, C, H, W]`` (``[H, W, C]`` inputs get B = 1)."""
    if img.shape != ref.shape:
        raise ValueError(f"image shapes differ: {tuple(img.shape)} vs {tuple(ref.shape)}")
    if img.dim() == 3:
        return img.permute(2, 0, 1)[None], ref.permute(2, 0, 1)[None]
    if img.dim() == 4:
        return img, ref
    raise ValueError(f"expected [H, W, C] or [B, C, H, W] images, got shape {tuple(img.shape)}")


@lru_cache(maxsize=16)
def _window_1d(size: int, sigma: float, dtype: torch.dtype, device: str) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = SIGMA, dtype=torch.float32, device="cpu"):
    """The normalised 1-D Gaussian ``g`` (length ``size``); the 2-D window is ``g g^T``."""
    return _window_1d(size, float(sigma), dtype, str(torch.device(device)))


def _blur(x: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Per-channel zero-padded 2-D Gaussian filter as two grouped 1-D convolutions."""
    c = x.shape[1]
    g = gaussian_window(size, sigma, x.dtype, x.device)
    x = x.contiguous(memory_format=torch.channels_last)  # depthwise convs are ~3x faster NHWC on CPU
    x = F.conv2d(x, g.view(1, 1, size, 1).expand(c, 1, size, 1), padding=(size // 2, 0), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, size).expand(c, 1, 1, size), padding=(0, size // 2), groups=c)


def ssim_map(
    img: torch.Tensor, ref: torch.Tensor, window_size: int = WINDOW_SIZE, sigma: float = SIGMA
) -> torch.Tensor:
    """Local SSIM index, ``[B, C, H, W]`` (Wang et al. 2004, eq. 13).

    ``SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))``
    with Gaussian-weighted local moments. Differentiable in both arguments.
    """
    x, y = to_bchw(img, ref)
    c = x.shape[1]
    # One blur call for all five moments: stack them along the channel axis.
    mu_x, mu_y, xx, yy, xy = _blur(torch.cat([x, y, x * x, y * y, x * y], 1), window_size, sigma).split(c, 1)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x, var_y, cov = xx - mu_xx, yy - mu_yy, xy - mu_xy
    return ((2 * mu_xy + C1) * (2 * cov + C2)) / ((mu_xx + mu_yy + C1) * (var_x + var_y + C2))


def ssim(img: torch.Tensor, ref: torch.Tensor, reduction: str = "mean", **kw) -> torch.Tensor:
    """Mean SSIM, as 3DGS evaluates it; a differentiable tensor (``1 - ssim`` is D-SSIM).

    ``reduction="mean"`` gives a 0-d tensor averaged over batch, channels and pixels (what
    3DGS' ``ssim(..., size_average=True)`` returns); ``"none"`` gives one value per image, ``[B]``.
    Identical images give exactly 1.
    """
    m = ssim_map(img, ref, **kw)
    if reduction == "mean":
        return m.mean()
    if reduction == "none":
        return m.flatten(1).mean(1)
    raise ValueError(f"reduction must be 'mean' or 'none', not {reduction!r}")


def psnr(img: torch.Tensor, ref: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for peak value 1: ``10 log10(1 / MSE)``.

    The MSE is taken per image over all channels and pixels; for a batch the per-image PSNRs
    are averaged (as 3DGS' ``metrics.py`` does over a test set). Identical images give ``inf``.
    """
    x, y = to_bchw(img, ref)
    mse = (x.detach().double() - y.detach().double()).pow(2).flatten(1).mean(1)
    vals = [math.inf if m == 0 else -10.0 * math.log10(m) for m in mse.tolist()]
    return float(sum(vals) / len(vals))


def mean_psnr_ssim(images: list[torch.Tensor], references: list[torch.Tensor]) -> tuple[float, float]:
    """Mean PSNR (each capped at :data:`PSNR_CAP`) and mean SSIM of image pairs: how the bench and
    ``compress --target-psnr`` score a decoded scene's renders against the original's."""
    ps = [min(psnr(a, b), PSNR_CAP) for a, b in zip(images, references)]
    ss = [float(ssim(a, b)) for a, b in zip(images, references)]
    return float(sum(ps) / len(ps)), float(sum(ss) / len(ss))
