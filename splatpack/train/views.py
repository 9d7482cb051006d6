"""What the loop trains on: the capture's views on the training device, and the Gaussians it
starts from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from splatpack import formats
from splatpack.captures import Capture, Frame, load_image
from splatpack.captures.masks import load_mask
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.train.config import TrainConfig
from splatpack.train.init import Cameras, common_view_points, look_at_point, point_colours

__all__ = ["MASK_MODES", "View", "frame_cameras", "initial_gaussians", "load_views", "no_points_notice"]


@dataclass
class View:
    """A frame with its image on the training device."""

    frame: Frame
    image: torch.Tensor  # [H, W, 3] composited on the capture's background
    alpha: torch.Tensor | None  # [H, W] when the source had alpha (or a mask, mask_mode "alpha")
    viewmat: torch.Tensor  # [4, 4]
    K: torch.Tensor  # [3, 3]
    mask: torch.Tensor | None = None  # [H, W] the pixels the loss counts (mask_mode "loss")


MASK_MODES = ("alpha", "loss", "off")


def load_views(frames: list[Frame], background: torch.Tensor, device: str, mask_mode: str = "alpha") -> list[View]:
    """The frames' images on ``device``, those with alpha composited on ``background`` [3].

    A frame's object mask (:func:`~splatpack.captures.masks.load_mask`) is, by ``mask_mode``:
    ``"alpha"`` its alpha (the image is composited on ``background`` through it), ``"loss"``
    the view's ``mask`` (the photometric loss ignores the pixels outside it), ``"off"`` unused.
    """
    if mask_mode not in MASK_MODES:
        raise SplatpackError(f"mask_mode must be one of {', '.join(MASK_MODES)}, not {mask_mode!r}")
    views = []
    for fr in frames:
        img = torch.from_numpy(load_image(fr))
        alpha = img[..., 3] if img.shape[-1] == 4 else None
        mask = None if mask_mode == "off" else load_mask(fr)
        mask = None if mask is None else torch.from_numpy(mask)
        if mask is not None and mask_mode == "alpha":
            alpha = mask if alpha is None else alpha * mask
            mask = None
        if alpha is not None:
            img = img[..., :3] * alpha[..., None] + background * (1 - alpha[..., None])
        views.append(
            View(
                frame=fr,
                image=img.contiguous().to(device),
                alpha=None if alpha is None else alpha.to(device),
                viewmat=torch.from_numpy(fr.viewmat()).float().to(device),
                K=torch.from_numpy(fr.K).float().to(device),
                mask=None if mask is None else mask.to(device),
            )
        )
    return views


def no_points_notice(capture: Capture, init_mode: str = "frustum") -> str:
    """What ``train`` says, in one line, about a capture without SfM points."""
    where = "in the cameras' common view" if init_mode == "frustum" else "in a box around the cameras"
    return (
        f"note: {capture.name} has no SfM points: starting from random points {where}; "
        "`splatpack process IMAGES --poses FILE --out DIR` triangulates points with the known poses"
    )


def frame_cameras(frames: list[Frame], near_far: tuple[float, float] | None = None) -> Cameras:
    """The frames' cameras for :mod:`~splatpack.train.init`. Depth bounds: each frame's own (LLFF),
    else the capture's ``near_far``, else ``0.01 r … 2 r`` with ``r`` the largest distance from a
    camera to the point the cameras look at (:func:`~splatpack.train.init.look_at_point`; the
    rig's diameter instead when that point is far outside the rig, as for parallel axes)."""
    c2w = np.stack([f.camtoworld for f in frames])
    centres = c2w[:, :3, 3]
    diameter = float(np.linalg.norm(centres[:, None] - centres[None], axis=-1).max()) or 1.0
    reach = float(np.linalg.norm(centres - look_at_point(c2w), axis=1).max())
    reach = reach if reach <= 10 * diameter else diameter
    default = near_far or (0.01 * reach, 2.0 * reach)
    bounds = np.array([f.near_far or default for f in frames], dtype=np.float64)
    return Cameras(
        c2w=c2w,
        K=np.stack([f.K for f in frames]),
        sizes=np.array([[f.width, f.height] for f in frames], dtype=np.float64),
        near=bounds[:, 0],
        far=bounds[:, 1],
    )


def initial_gaussians(
    capture: Capture,
    cfg: TrainConfig,
    views: list[View] | None = None,
    notice: Callable[[str], object] | None = None,
) -> GaussianSet:
    """From ``cfg.init_from`` (trained splats), the capture's SfM points, or — when there are none
    — ``cfg.init_random_points`` random points: in the common view of the training cameras (at
    most :data:`INIT_CAMERAS` of them; ``init_mode: frustum``, :func:`~splatpack.train.init.common_view_points`; with the ``views``'
    alpha or masks carved to their visual hull, coloured from their images) or in a box
    (``init_mode: box``, 3DGS). ``notice`` is told, in one line, that the capture has no points."""
    if cfg.init_from:
        gs = formats.load_scene(cfg.init_from)
        if gs.sh_degree != cfg.sh_degree:
            raise SplatpackError(f"the splats have SH degree {gs.sh_degree}, the config {cfg.sh_degree}", cfg.init_from)
        return gs
    if capture.points is not None and len(capture.points) >= 4:
        return GaussianSet.from_points(
            capture.points, capture.point_colors, cfg.sh_degree, cfg.init_opacity, cfg.init_scale, cfg.seed
        )
    if cfg.init_mode not in ("frustum", "box"):
        raise SplatpackError(f"init_mode must be 'frustum' or 'box', not {cfg.init_mode!r}")
    if not 0 < cfg.init_view_fraction <= 1:
        raise SplatpackError(f"init_view_fraction must be in (0, 1], not {cfg.init_view_fraction!r}")
    if notice is not None:
        notice(no_points_notice(capture, cfg.init_mode))
    kw = {"init_opacity": cfg.init_opacity, "init_scale": cfg.init_scale}
    if cfg.init_mode == "frustum":
        frames = [v.frame for v in views] if views else capture.train
        pick = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), INIT_CAMERAS)).round().astype(int))
        frames, views = [frames[i] for i in pick], views and [views[i] for i in pick]
        cams = frame_cameras(frames, capture.near_far)
        masks = None
        if views:
            masks = [_numpy(v.alpha if v.alpha is not None else v.mask) for v in views]
        try:
            pts = common_view_points(cams, cfg.init_random_points, cfg.init_view_fraction, masks, seed=cfg.seed)
        except ValueError as e:
            if notice is not None:
                notice(f"note: {e}; starting from random points in a box around the cameras instead")
        else:
            if len(pts) >= 4:
                rng = np.random.default_rng(cfg.seed)
                colours = point_colours(pts, cams, [_numpy(v.image) for v in views]) if views else rng.random(pts.shape)
                return GaussianSet.from_points(pts, colours, cfg.sh_degree, seed=cfg.seed, **kw)
    if capture.format in ("blender", "synthetic"):  # objects around the origin (3DGS: ±1.3)
        lo, hi = np.full(3, -cfg.init_extent), np.full(3, cfg.init_extent)
    else:
        c = capture.camera_centers().mean(0)
        r = capture.scene_scale() * cfg.init_extent / 1.1
        lo, hi = c - r, c + r
    return GaussianSet.random_in_box(cfg.init_random_points, lo, hi, cfg.sh_degree, cfg.seed, **kw)


#: the frustum init tests its candidates against this many training cameras at most (evenly spread
#: over the capture; the cost is candidates × cameras)
INIT_CAMERAS = 32


def _numpy(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy()
