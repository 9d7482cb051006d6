"""What the loop trains on: the capture's views on the training device, and the Gaussians it
starts from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from splatpack import formats
from splatpack.captures import Capture, Frame, load_image
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.train.config import TrainConfig

__all__ = ["View", "initial_gaussians", "load_views"]


@dataclass
class View:
    """A frame with its image on the training device."""

    frame: Frame
    image: torch.Tensor  # [H, W, 3] composited on the capture's background
    alpha: torch.Tensor | None  # [H, W] when the source had alpha
    viewmat: torch.Tensor  # [4, 4]
    K: torch.Tensor  # [3, 3]


def load_views(frames: list[Frame], background: torch.Tensor, device: str) -> list[View]:
    """The frames' images on ``device``, those with alpha composited on ``background`` [3]."""
    views = []
    for fr in frames:
        img = torch.from_numpy(load_image(fr))
        alpha = None
        if img.shape[-1] == 4:
            alpha = img[..., 3]
            img = img[..., :3] * alpha[..., None] + background * (1 - alpha[..., None])
        views.append(
            View(
                frame=fr,
                image=img.contiguous().to(device),
                alpha=None if alpha is None else alpha.to(device),
                viewmat=torch.from_numpy(fr.viewmat()).float().to(device),
                K=torch.from_numpy(fr.K).float().to(device),
            )
        )
    return views


def initial_gaussians(capture: Capture, cfg: TrainConfig) -> GaussianSet:
    """From ``cfg.init_from`` (trained splats), the capture's SfM points, or random in the scene
    bounds when there are none."""
    if cfg.init_from:
        gs = formats.load_scene(cfg.init_from)
        if gs.sh_degree != cfg.sh_degree:
            raise SplatpackError(f"the splats have SH degree {gs.sh_degree}, the config {cfg.sh_degree}", cfg.init_from)
        return gs
    if capture.points is not None and len(capture.points) >= 4:
        return GaussianSet.from_points(
            capture.points, capture.point_colors, cfg.sh_degree, cfg.init_opacity, cfg.init_scale, cfg.seed
        )
    if capture.format in ("blender", "synthetic"):  # objects around the origin (3DGS: ±1.3)
        lo, hi = np.full(3, -cfg.init_extent), np.full(3, cfg.init_extent)
    else:
        c = capture.camera_centers().mean(0)
        r = capture.scene_scale() * cfg.init_extent / 1.1
        lo, hi = c - r, c + r
    return GaussianSet.random_in_box(
        cfg.init_random_points,
        lo,
        hi,
        cfg.sh_degree,
        cfg.seed,
        init_opacity=cfg.init_opacity,
        init_scale=cfg.init_scale,
    )
