"""A decoded compact scene: render it with its colour field (Compact-3DGS eq. 6), carry its
training cameras, and bake it into plain Gaussians."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from splatpack.compress.bake import bake_sh
from splatpack.core import GaussianSet
from splatpack.core.sh import sh_degree_from_bases
from splatpack.render import rasterize

__all__ = [
    "CompactScene",
    "camera_center",
    "compact_to_gaussians",
    "field_colors",
    "pack_views",
    "render_compact",
    "unpack_views",
]


@dataclass
class CompactScene:
    """A decoded compact scene, ready to render (see :func:`render_compact`)."""

    means: Tensor  # [N, 3]
    quats: Tensor  # [N, 4] (not normalised: the rasteriser normalises)
    scales: Tensor  # [N, 3] linear
    opacities: Tensor  # [N] α
    field: Any | None  # ColourField (eval) or None
    sh: Tensor | None  # [N, K, 3] when there is no field
    meta: dict[str, Any]
    views: np.ndarray | None = None  # [M, 27] float32 cameras (see pack_views)

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return 0 if self.sh is None else sh_degree_from_bases(self.sh.shape[1])

    def to(self, device: str | torch.device) -> CompactScene:
        """A copy with its tensors and colour field on ``device`` (a decoded scene is on the CPU);
        the field is copied, since ``Module.to`` moves in place."""
        return dataclasses.replace(
            self,
            means=self.means.to(device),
            quats=self.quats.to(device),
            scales=self.scales.to(device),
            opacities=self.opacities.to(device),
            field=None if self.field is None else copy.deepcopy(self.field).to(device),
            sh=None if self.sh is None else self.sh.to(device),
        )


def camera_center(viewmat: Tensor) -> Tensor:
    """World position of a camera from its world→camera matrix: c = −Rᵀt."""
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    return -R.T @ t


def field_colors(field, means: Tensor, viewmat: Tensor) -> Tensor:
    """SH-DC colours [N, 1, 3] from the colour field for a camera (Compact-3DGS eq. 6)."""
    return field.colours(means, camera_center(viewmat))[:, None, :]


def render_compact(scene: CompactScene, viewmat, K, width, height, background=None, backend="auto"):
    """Render a :class:`CompactScene` with :func:`splatpack.render.rasterize` (the colour field's
    DC colours for this camera, or the stored SH)."""
    if scene.field is not None:
        colors, degree = field_colors(scene.field, scene.means, viewmat), 0
    else:
        colors, degree = scene.sh, scene.sh_degree
    return rasterize(
        scene.means,
        scene.quats,
        scene.scales,
        scene.opacities,
        colors,
        viewmat,
        K,
        width,
        height,
        sh_degree=degree,
        background=background,
        backend=backend,
    )


def pack_views(views) -> np.ndarray:
    """Cameras ``(viewmat, K, width, height)`` as [M, 27] float32 rows: viewmat (16), K (9), width, height."""
    rows = [
        np.concatenate([np.asarray(vm, np.float32).reshape(16), np.asarray(K, np.float32).reshape(9), [w, h]])
        for vm, K, w, h in views
    ]
    return np.asarray(rows, np.float32).reshape(-1, 27)


def unpack_views(views: np.ndarray) -> list[tuple[Tensor, Tensor, int, int]]:
    """Inverse of :func:`pack_views`: ``[(viewmat [4, 4], K [3, 3], width, height), …]``."""
    return [
        (
            torch.from_numpy(r[:16].reshape(4, 4).copy()),
            torch.from_numpy(r[16:25].reshape(3, 3).copy()),
            int(r[25]),
            int(r[26]),
        )
        for r in views
    ]


def compact_to_gaussians(scene: CompactScene) -> GaussianSet:
    """A decoded compact scene as a plain :class:`GaussianSet`: the colour field baked into
    degree-3 SH over the stored training-camera directions (:func:`~splatpack.compress.bake.bake_sh`)."""
    views = unpack_views(scene.views) if scene.views is not None else []
    if scene.field is not None:
        centres = torch.stack([camera_center(vm) for vm, _, _, _ in views]) if views else None
        sh = bake_sh(scene.field, scene.means, centres)
    else:
        sh = scene.sh
    alpha = scene.opacities.clamp(1e-6, 1 - 1e-6)
    return GaussianSet(
        means=scene.means,
        quats=torch.nn.functional.normalize(scene.quats, dim=-1),
        scales=torch.log(scene.scales.abs().clamp_min(1e-12)),
        opacities=torch.log(alpha / (1 - alpha)),
        sh0=sh[:, :1].contiguous(),
        shN=sh[:, 1:].contiguous(),
    )
