"""Pure-torch compositing: the slow reference and the tiled baseline.

* :func:`composite_dense` evaluates every Gaussian at every pixel (O(P·N) memory) with the
  same rules as the compiled kernel — α = min(0.999, o·e^{−σ}), skip σ < 0 or α < 1/255, stop
  before T ≤ 1e-4 — written with cumulative products so autograd differentiates it. Tests
  hold the kernel's images and gradients against it.
* :func:`composite_torch_tiled` is the same computation per 16×16 tile over that tile's
  depth-sorted list: the fastest "pure torch" formulation, and the baseline the benchmark
  measures the kernel's speed-up against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from splatpack.render.cpu_kernels import ALPHA_MAX, ALPHA_MIN, T_MIN, TILE_SIZE, isect_tiles


def _composite_pixels(pix: Tensor, means2d, conics, colors, opacities, background) -> tuple[Tensor, Tensor]:
    """Composite depth-ordered Gaussians (dim 1) at pixel centres ``pix`` [P, 2]."""
    d = pix[:, None, :] - means2d[None, :, :]  # [P, N, 2]
    dx, dy = d[..., 0], d[..., 1]
    sigma = 0.5 * (conics[:, 0] * dx * dx + conics[:, 2] * dy * dy) + conics[:, 1] * dx * dy
    alpha = torch.clamp_max(opacities[None, :] * torch.exp(-sigma), ALPHA_MAX)
    keep = (sigma >= 0) & (alpha >= ALPHA_MIN)
    alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
    # the pixel stops before the Gaussian that would take T to <= 1e-4: T is non-increasing, so
    # "included" is a prefix condition on the inclusive product
    T_incl = torch.cumprod(1.0 - alpha, dim=1)
    alpha = torch.where(T_incl > T_MIN, alpha, torch.zeros_like(alpha))
    T_excl = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha[:, :-1]], dim=1), dim=1)
    w = alpha * T_excl
    T_final = T_excl[:, -1] * (1.0 - alpha[:, -1]) if alpha.shape[1] else torch.ones_like(pix[:, 0])
    image = w @ colors + T_final[:, None] * background[None, :]
    return image, 1.0 - T_final


def _pixel_centres(x0: int, y0: int, w: int, h: int, like: Tensor) -> Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(y0, y0 + h, dtype=like.dtype), torch.arange(x0, x0 + w, dtype=like.dtype), indexing="ij"
    )
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2) + 0.5


def composite_dense(means2d, conics, colors, opacities, radii, depths, background, width, height):
    """Reference compositing of all visible Gaussians at all pixels → (image, alpha)."""
    vis = (radii > 0).all(-1)
    order = torch.argsort(torch.where(vis, depths, torch.full_like(depths, float("inf"))), stable=True)
    order = order[: int(vis.sum())]
    image, alpha = _composite_pixels(
        _pixel_centres(0, 0, width, height, means2d),
        means2d[order],
        conics[order],
        colors[order],
        opacities[order],
        background,
    )
    return image.reshape(height, width, -1), alpha.reshape(height, width)


def composite_torch_tiled(
    means2d, conics, colors, opacities, radii, depths, background, width, height, tile_size: int = TILE_SIZE
):
    """Tile-by-tile torch compositing (autograd-differentiable) → (image, alpha)."""
    tiles_w = (width + tile_size - 1) // tile_size
    tiles_h = (height + tile_size - 1) // tile_size
    offsets, flat = isect_tiles(
        means2d.detach().float().numpy(),
        radii.int().numpy(),
        depths.detach().float().numpy(),
        tile_size,
        tiles_w,
        tiles_h,
    )
    flat = torch.from_numpy(flat).long()
    rows = []
    for ty in range(tiles_h):
        row = []
        for tx in range(tiles_w):
            t = ty * tiles_w + tx
            ids = flat[offsets[t] : offsets[t + 1]]
            x0, y0 = tx * tile_size, ty * tile_size
            w, h = min(tile_size, width - x0), min(tile_size, height - y0)
            img, a = _composite_pixels(
                _pixel_centres(x0, y0, w, h, means2d),
                means2d[ids],
                conics[ids],
                colors[ids],
                opacities[ids],
                background,
            )
            row.append(torch.cat([img, a[:, None]], dim=-1).reshape(h, w, -1))
        rows.append(torch.cat(row, dim=1))
    out = torch.cat(rows, dim=0)
    return out[..., :-1], out[..., -1]
