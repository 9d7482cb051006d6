"""Distances between point clouds and the generation metrics of PointFlow (Yang et al.,
"PointFlow: 3D Point Cloud Generation with Continuous Normalizing Flows", ICCV 2019, §5):
Chamfer distance, minimum matching distance (MMD), coverage (COV) and 1-nearest-neighbour
accuracy (1-NNA), each with the Chamfer distance between clouds."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SetMetrics", "chamfer_distance", "pairwise_chamfer", "set_metrics"]


def chamfer_distance(x: Tensor, y: Tensor) -> Tensor:
    """CD(X, Y) = mean_x min_y ‖x − y‖² + mean_y min_x ‖x − y‖² for clouds [N, 3] and [M, 3]."""
    d = torch.cdist(x.double(), y.double()).square()
    return d.min(1).values.mean() + d.min(0).values.mean()


def pairwise_chamfer(a: list[Tensor], b: list[Tensor]) -> Tensor:
    """[len(a), len(b)]: the Chamfer distance of every pair."""
    return torch.tensor([[float(chamfer_distance(x, y)) for y in b] for x in a], dtype=torch.float64)


@dataclass(frozen=True)
class SetMetrics:
    """PointFlow's metrics of generated clouds S_g against reference clouds S_r."""

    mmd: float  # mean over Y ∈ S_r of min over X ∈ S_g of CD(X, Y): fidelity (lower is better)
    cov: float  # share of S_r that is the nearest reference of some X ∈ S_g: diversity (higher)
    nna: float  # leave-one-out 1-NN accuracy over S_g ∪ S_r: 0.5 when the sets are alike


def set_metrics(gen_ref: Tensor, gen_gen: Tensor, ref_ref: Tensor) -> SetMetrics:
    """MMD, COV and 1-NNA from the Chamfer matrices [G, R], [G, G] and [R, R]. In 1-NNA a cloud
    counts as correctly classified only when its nearest other cloud of its own set is strictly
    nearer than every cloud of the other set."""
    mmd = float(gen_ref.min(0).values.mean())
    cov = len(set(gen_ref.argmin(1).tolist())) / gen_ref.shape[1]
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    own_g = torch.where(torch.eye(len(gen_gen), dtype=torch.bool), inf, gen_gen).min(1).values
    own_r = torch.where(torch.eye(len(ref_ref), dtype=torch.bool), inf, ref_ref).min(1).values
    right = (own_g < gen_ref.min(1).values).sum() + (own_r < gen_ref.min(0).values).sum()
    return SetMetrics(mmd, cov, float(right) / (len(gen_gen) + len(ref_ref)))
