"""Rasterizer backends behind one function: :func:`rasterize` (gsplat on CUDA, compiled kernel on CPU)."""

from splatpack.core.sh import eval_sh_bases, rgb_to_sh, sh_to_color, sh_to_rgb
from splatpack.render.gaussians import render_gaussians, render_image, render_views
from splatpack.render.projection import Projection, project_gaussians, quat_to_rotmat
from splatpack.render.rasterize import cuda_available, rasterize, resolve_backend, warm_up

__all__ = [
    "Projection",
    "cuda_available",
    "eval_sh_bases",
    "project_gaussians",
    "quat_to_rotmat",
    "rasterize",
    "render_gaussians",
    "render_image",
    "render_views",
    "resolve_backend",
    "rgb_to_sh",
    "sh_to_color",
    "sh_to_rgb",
    "warm_up",
]
