"""Canonical local frames: one of the 24 equivalent (rotation, scale) pairs of each Gaussian.

A Gaussian's covariance Σ = R S² Rᵀ (R from the unit quaternion q, S = diag(s)) does not change
when its local axes are permuted together with the scales, or when two of them are flipped:
for every rotation P in the cube's rotation group (the 24 signed permutation matrices with
det P = +1), (R P, Pᵀ s) gives the same Σ, because P diag(s²) Pᵀ = diag((Pᵀ s)²) for a signed
permutation. A trained splat picks among the 24 at random, so two neighbouring Gaussians with
the same shape can store quaternions 90° or 180° apart and scales in a different order, which
costs bits in any codec that predicts one Gaussian's values from another's.

:func:`canonical_frames` picks one representative: the axes ordered by decreasing scale
(s₀ ≥ s₁ ≥ s₂; the third axis negated when the permutation is odd, so that det stays +1),
then, of the four frames that keep that order (the identity and the 180° turns about each
axis, q ⊗ {1, i, j, k}, which permute the components of q up to sign), the one whose real part
|w| is largest, with w ≥ 0. So every canonical quaternion has w ≥ |x|, |y|, |z| and the
smallest-three index is always w. Renders do not change (only Σ enters them).
"""

from __future__ import annotations

import dataclasses
import itertools

import torch
from torch import Tensor

__all__ = ["canonical_frames", "canonical_gaussians", "positive_w_quats", "quat_multiply"]


def positive_w_quats(q: Tensor) -> Tensor:
    """Unit quaternions with w ≥ 0 (q and −q are the same rotation)."""
    q = torch.nn.functional.normalize(q, dim=-1)
    return torch.where(q[:, :1] < 0, -q, q)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """The Hamilton product a ⊗ b of ``wxyz`` quaternions [..., 4] (R(a ⊗ b) = R(a) R(b))."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def _permutation_quats() -> tuple[Tensor, Tensor]:
    """(orders [6, 3], quaternions [6, 4]): for each ordering of the axes, the quaternion of the
    rotation P whose columns are e_order[0], e_order[1], ±e_order[2] (det P = +1)."""
    orders, quats = [], []
    for order in itertools.permutations(range(3)):
        p = torch.zeros(3, 3, dtype=torch.float64)
        for col, axis in enumerate(order):
            p[axis, col] = 1.0
        p[:, 2] *= torch.linalg.det(p)
        # P is a signed permutation: its quaternion from the trace (Shepperd), exact here
        t = torch.stack(
            [
                1 + p.trace(),
                1 + p[0, 0] - p[1, 1] - p[2, 2],
                1 - p[0, 0] + p[1, 1] - p[2, 2],
                1 - p[0, 0] - p[1, 1] + p[2, 2],
            ]
        )
        k = int(t.argmax())
        s = 2 * torch.sqrt(t[k])
        if k == 0:
            q = [s / 4, (p[2, 1] - p[1, 2]) / s, (p[0, 2] - p[2, 0]) / s, (p[1, 0] - p[0, 1]) / s]
        elif k == 1:
            q = [(p[2, 1] - p[1, 2]) / s, s / 4, (p[0, 1] + p[1, 0]) / s, (p[0, 2] + p[2, 0]) / s]
        elif k == 2:
            q = [(p[0, 2] - p[2, 0]) / s, (p[0, 1] + p[1, 0]) / s, s / 4, (p[1, 2] + p[2, 1]) / s]
        else:
            q = [(p[1, 0] - p[0, 1]) / s, (p[0, 2] + p[2, 0]) / s, (p[1, 2] + p[2, 1]) / s, s / 4]
        orders.append(list(order))
        quats.append(torch.stack(q))
    return torch.tensor(orders), torch.stack(quats)


_ORDERS, _PERMUTATION_QUATS = _permutation_quats()
#: row of _ORDERS for an axis order (a, b, c), looked up by the key 3a + b (unique per order)
_ORDER_ROW = torch.full((9,), -1, dtype=torch.long).index_put_((_ORDERS[:, 0] * 3 + _ORDERS[:, 1],), torch.arange(6))
#: 1, i, j, k: right-multiplying by these turns the frame 180° about no axis, x, y or z
_HALF_TURNS = torch.eye(4, dtype=torch.float64)


def canonical_frames(quats: Tensor, scales: Tensor, order_scales: bool = True) -> tuple[Tensor, Tensor]:
    """(quats [N, 4] unit ``wxyz`` with w ≥ |x|, |y|, |z|, scales [N, 3] in decreasing order) for
    the same covariances as ``quats`` (any norm) and ``scales`` (log or linear: only their order
    is used). Differentiable in both (a gather and right-multiplications by constants).
    ``order_scales=False`` keeps the axes as given and only turns the frame so that |w| is largest."""
    q = torch.nn.functional.normalize(quats, dim=-1)
    if order_scales:
        perm = torch.argsort(scales.detach(), dim=1, descending=True, stable=True)  # [N, 3]
        which = _ORDER_ROW.to(perm.device)[perm[:, 0] * 3 + perm[:, 1]]
        q = quat_multiply(q, _PERMUTATION_QUATS.to(q)[which])
        scales = torch.gather(scales, 1, perm)
    k = q.detach().abs().argmax(1)  # the largest component moves to w under q ⊗ {1, i, j, k}[k]
    q = quat_multiply(q, _HALF_TURNS.to(q)[k])
    return torch.where(q[:, :1] < 0, -q, q), scales


def canonical_gaussians(gs, order_scales: bool = True):
    """``gs`` (a :class:`~splatpack.core.GaussianSet`) with every Gaussian in its canonical
    frame (:func:`canonical_frames`, in float64; unit quaternions, decreasing log-scales)."""
    quats, scales = canonical_frames(gs.quats.detach().double(), gs.scales.detach().double(), order_scales)
    return dataclasses.replace(gs, quats=quats.to(gs.quats.dtype), scales=scales.to(gs.scales.dtype))
