"""Objects as images: the training data of the generative models, in the compression core's own
representation, a PLAS-sorted attribute grid (Morgenstern et al., "Compact 3D Scene
Representation via Self-Organizing Gaussian Grids", ECCV 2024).

One object (a :class:`~splatpack.core.GaussianSet`) becomes a float tensor [C, H, W]:

1. **Object frame**: centred on the midpoint of its 1st–99th percentile box and scaled so that
   box's largest half-side is 1 (log-scales shift by −log of the factor); far floaters do not
   move it.
2. **Canonical local frames** (:func:`splatpack.core.frames.canonical_gaussians`): of the 24
   equivalent (rotation, scale) pairs, scales in decreasing order and |w| largest, so a Gaussian's
   channels do not jump between equivalent encodings.
3. **PLAS** (:func:`splatpack.compress.grid_sort.sort_into_grid`) on SOG's sort features
   (position, colour DC, linear scale), onto an H×W grid holding exactly H·W Gaussians.
4. **Channels** (:data:`CHANNELS`): position 3, log-scale 3, unit quaternion 4 (w ≥ 0), opacity
   logit 1, colour DC 3, and the SH rest (3 per coefficient, channel-major) when the layout asks.

Augmentation (:func:`augmented_grid`): a rotation about the up axis (positions, quaternions and
the SH rest turned together; :func:`splatpack.core.sh.sh_rotation`), a random subset of H·W
Gaussians, and a fresh PLAS seed, so one object yields many different grids of the same shape.
:class:`ChannelStats` standardises channels with statistics of the training set, stored with a
model. :func:`grid_to_gaussians` inverts steps 1–4 up to the object frame.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from splatpack.compress.grid_sort import GridSortConfig, sort_features, sort_into_grid
from splatpack.core import GaussianSet
from splatpack.core.frames import canonical_gaussians, quat_multiply
from splatpack.core.sh import num_sh_bases, sh_rotation

__all__ = [
    "CHANNELS",
    "ChannelStats",
    "GridLayout",
    "ObjectFrame",
    "augmented_grid",
    "cells_to_gaussians",
    "from_object_frame",
    "gaussians_to_grid",
    "grid_channels",
    "grid_to_gaussians",
    "held_out_split",
    "object_frame",
    "rotate_about_axis",
    "sorted_grid",
    "subsample",
]

#: the channels of a degree-0 grid, in order; the SH rest follows as ``sh{k}_{r,g,b}``
CHANNELS = ("x", "y", "z", "log_s0", "log_s1", "log_s2", "qw", "qx", "qy", "qz", "opacity", "dc_r", "dc_g", "dc_b")
SORT_WEIGHTS = {"means": 1.0, "sh0": 1.0, "scales": 1.0}  # SOG's


@dataclass(frozen=True)
class GridLayout:
    """The grid a model works on: H×W Gaussians, the SH degree kept (the rest dropped, or
    zero-filled when an input has less), and the world's up axis (objects10k and INRIA PLY
    captures: −y)."""

    height: int = 64
    width: int = 64
    sh_degree: int = 0
    up: tuple[float, float, float] = (0.0, -1.0, 0.0)

    @property
    def size(self) -> int:
        return self.height * self.width

    @property
    def channels(self) -> int:
        return len(CHANNELS) + 3 * (num_sh_bases(self.sh_degree) - 1)

    def validate(self) -> GridLayout:
        if self.height < 4 or self.width < 4:
            raise ValueError(f"a grid needs at least 4×4 cells, not {self.height}×{self.width}")
        if self.sh_degree not in (0, 1, 2, 3):
            raise ValueError(f"sh_degree must be 0..3, not {self.sh_degree}")
        if not math.isclose(float(np.linalg.norm(self.up)), 1.0, rel_tol=1e-6):
            raise ValueError(f"up must be a unit vector, not {self.up}")
        return self


def grid_channels(layout: GridLayout) -> tuple[str, ...]:
    rest = tuple(f"sh{k}_{c}" for c in "rgb" for k in range(1, num_sh_bases(layout.sh_degree)))
    return CHANNELS + rest


@dataclass(frozen=True)
class ObjectFrame:
    """x_object = (x_world − centre) / radius."""

    centre: tuple[float, float, float]
    radius: float


def object_frame(gs: GaussianSet, quantile: float = 0.01) -> ObjectFrame:
    """The centre and radius of the box between the ``quantile`` and 1 − ``quantile``
    percentiles of the positions (robust to a few far floaters)."""
    m = gs.means.detach().double()
    lo, hi = torch.quantile(m, quantile, dim=0), torch.quantile(m, 1 - quantile, dim=0)
    radius = float((hi - lo).max() / 2)
    return ObjectFrame(tuple(float(v) for v in (lo + hi) / 2), max(radius, 1e-9))


def to_object_frame(gs: GaussianSet, frame: ObjectFrame) -> GaussianSet:
    c = torch.tensor(frame.centre, dtype=gs.means.dtype)
    return dataclasses.replace(gs, means=(gs.means - c) / frame.radius, scales=gs.scales - math.log(frame.radius))


def from_object_frame(gs: GaussianSet, frame: ObjectFrame) -> GaussianSet:
    """The inverse of :func:`to_object_frame`."""
    c = torch.tensor(frame.centre, dtype=gs.means.dtype)
    return dataclasses.replace(gs, means=gs.means * frame.radius + c, scales=gs.scales + math.log(frame.radius))


def rotate_about_axis(gs: GaussianSet, axis: tuple[float, float, float], angle: float) -> GaussianSet:
    """``gs`` turned by ``angle`` radians about ``axis`` through the origin: positions,
    orientations (q_R ⊗ q) and the SH rest (so colours turn with the object)."""
    a = torch.tensor(axis, dtype=torch.float64)
    a = a / a.norm()
    half = angle / 2
    q = torch.cat([torch.tensor([math.cos(half)], dtype=torch.float64), math.sin(half) * a])
    x, y, z = a.tolist()
    k = torch.tensor([[0, -z, y], [z, 0, -x], [-y, x, 0]], dtype=torch.float64)
    rot = torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)  # Rodrigues
    dtype = gs.means.dtype
    means = (gs.means.double() @ rot.T).to(dtype)
    quats = quat_multiply(q.expand(len(gs), 4), gs.quats.double()).to(gs.quats.dtype)
    shn = gs.shN
    if shn.shape[1]:
        m = sh_rotation(gs.sh_degree, rot)[1:, 1:]  # the DC row and column are the identity
        shn = torch.einsum("kj,njc->nkc", m, shn.double()).to(shn.dtype)
    return dataclasses.replace(gs, means=means, quats=quats, shN=shn)


def subsample(gs: GaussianSet, n: int, generator: torch.Generator) -> GaussianSet:
    """``n`` of the Gaussians, uniformly without replacement (with replacement when there are
    fewer than ``n``), in random order."""
    total = len(gs)
    if total >= n:
        keep = torch.randperm(total, generator=generator)[:n]
    else:
        keep = torch.cat(
            [torch.randperm(total, generator=generator), torch.randint(total, (n - total,), generator=generator)]
        )
    return GaussianSet(**{f.name: getattr(gs, f.name)[keep] for f in dataclasses.fields(GaussianSet)})


def _with_degree(gs: GaussianSet, degree: int) -> GaussianSet:
    k = num_sh_bases(degree) - 1
    shn = gs.shN[:, :k]
    if shn.shape[1] < k:
        shn = torch.cat([shn, shn.new_zeros(len(gs), k - shn.shape[1], 3)], 1)
    return dataclasses.replace(gs, shN=shn)


def gaussians_to_grid(gs: GaussianSet, layout: GridLayout, seed: int = 0) -> tuple[Tensor, np.ndarray]:
    """(grid [C, H, W] float32, index [H, W]: the row of ``gs`` at each cell) for exactly
    ``layout.size`` Gaussians already in their object frame."""
    layout.validate()
    if len(gs) != layout.size:
        raise ValueError(f"a {layout.height}×{layout.width} grid holds {layout.size} Gaussians, not {len(gs)}")
    return sorted_grid(gs, (layout.height, layout.width), layout.sh_degree, seed)


def sorted_grid(gs: GaussianSet, shape: tuple[int, int], sh_degree: int, seed: int = 0) -> tuple[Tensor, np.ndarray]:
    """(grid [C, H, W] float32 with the channels :func:`grid_channels` names for ``sh_degree``,
    index [H, W]: the row of ``gs`` at each cell, −1 for an empty one) of N ≤ H·W Gaussians,
    PLAS-sorted on SOG's features; an empty cell holds the channel means of the occupied ones."""
    h, w = shape
    if not 0 < len(gs) <= h * w:
        raise ValueError(f"a {h}×{w} grid cannot hold {len(gs)} Gaussians")
    gs = _with_degree(canonical_gaussians(gs), sh_degree)
    feats = sort_features(
        {"means": gs.means.double(), "sh0": gs.sh0.reshape(len(gs), 3).double(), "scales": gs.scales.double().exp()},
        SORT_WEIGHTS,
    )
    index, _ = sort_into_grid(feats, (h, w), GridSortConfig(seed=seed))
    values = torch.cat(
        [
            gs.means,
            gs.scales,
            gs.quats,
            gs.opacities.reshape(-1, 1),
            gs.sh0.reshape(-1, 3),
            gs.shN.transpose(1, 2).reshape(len(gs), -1),  # channel-major: r of every k, then g, then b
        ],
        1,
    ).float()
    rows = torch.from_numpy(index.reshape(-1))
    cells = values.mean(0, keepdim=True).expand(h * w, -1).clone()
    cells[rows >= 0] = values[rows[rows >= 0]]
    return cells.T.reshape(values.shape[1], h, w).contiguous(), index


def grid_to_gaussians(grid: Tensor, layout: GridLayout) -> GaussianSet:
    """The Gaussians of a grid [C, H, W] (object frame; quaternions renormalised)."""
    c = layout.channels
    if grid.shape != (c, layout.height, layout.width):
        raise ValueError(f"expected a grid of shape {(c, layout.height, layout.width)}, not {tuple(grid.shape)}")
    return cells_to_gaussians(grid.reshape(c, -1).T, layout.sh_degree)


def cells_to_gaussians(v: Tensor, sh_degree: int) -> GaussianSet:
    """The Gaussians of cells [N, C] holding :func:`grid_channels` (quaternions renormalised)."""
    v = v.float()
    k = num_sh_bases(sh_degree) - 1
    return GaussianSet(
        means=v[:, 0:3].contiguous(),
        scales=v[:, 3:6].contiguous(),
        quats=torch.nn.functional.normalize(v[:, 6:10], dim=1),
        opacities=v[:, 10].contiguous(),
        sh0=v[:, 11:14].reshape(-1, 1, 3).contiguous(),
        shN=v[:, 14:].reshape(len(v), 3, k).transpose(1, 2).contiguous(),
    )


def augmented_grid(gs: GaussianSet, layout: GridLayout, seed: int, rotate: bool = True) -> Tensor:
    """One training grid of an object (world frame): turned about the up axis by a random angle
    (when ``rotate``), ``layout.size`` Gaussians drawn at random, sorted with PLAS seed ``seed``."""
    g = torch.Generator().manual_seed(seed)
    obj = to_object_frame(gs, object_frame(gs))
    if rotate:
        obj = rotate_about_axis(obj, layout.up, float(torch.rand((), generator=g)) * 2 * math.pi)
    return gaussians_to_grid(subsample(obj, layout.size, g), layout, seed)[0]


@dataclass
class ChannelStats:
    """Per-channel mean and standard deviation over a set of grids (a model's input scaling)."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, grids: Tensor) -> ChannelStats:
        """From grids [B, C, H, W]."""
        flat = grids.transpose(0, 1).reshape(grids.shape[1], -1).double()
        return cls(flat.mean(1).float(), flat.std(1).clamp_min(1e-6).float())

    def standardise(self, grid: Tensor) -> Tensor:
        return (grid - self.mean[:, None, None]) / self.std[:, None, None]

    def restore(self, grid: Tensor) -> Tensor:
        return grid * self.std[:, None, None] + self.mean[:, None, None]

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean, "std": self.std}


def held_out_split(names: list[str], held_out: int = 6, seed: int = 0) -> tuple[list[str], list[str]]:
    """(training names, held-out names): a fixed split of a corpus, the same for the same names
    whatever their order: the names sorted, permuted with ``seed``, the first ``held_out`` kept
    out."""
    ordered = sorted(set(names))
    if len(ordered) <= held_out:
        raise ValueError(f"{len(ordered)} objects cannot spare {held_out} for evaluation")
    perm = np.random.default_rng(seed).permutation(len(ordered))
    test = sorted(ordered[i] for i in perm[:held_out])
    return [n for n in ordered if n not in test], test
