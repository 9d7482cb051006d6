"""Canonical local frames (``splatpack.core.frames``): same covariances, one representative."""

from __future__ import annotations

import torch

from splatpack.core.frames import canonical_frames, quat_multiply
from splatpack.render.projection import covariance_3d, quat_to_rotmat


def random_frames(n: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64) * torch.rand(
        n, 1, generator=g, dtype=torch.float64
    ).add(0.1)
    log_scales = torch.randn(n, 3, generator=g, dtype=torch.float64)
    log_scales[:50, 1] = log_scales[:50, 0]  # ties keep a well-defined order
    return quats, log_scales


def test_quat_multiply_composes_rotations():
    a, b = random_frames(200)[0], random_frames(200, seed=1)[0]
    a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    assert torch.allclose(quat_to_rotmat(quat_multiply(a, b)), quat_to_rotmat(a) @ quat_to_rotmat(b), atol=1e-12)


def test_same_covariance_one_representative():
    quats, log_scales = random_frames()
    q, s = canonical_frames(quats, log_scales)
    assert torch.allclose(covariance_3d(q, s.exp()), covariance_3d(quats, log_scales.exp()), atol=1e-11)
    assert torch.allclose(q.norm(dim=1), torch.ones(len(q), dtype=q.dtype))
    assert (s[:, :-1] >= s[:, 1:]).all()
    assert (q[:, :1] >= q[:, 1:].abs()).all() and (q[:, 0] > 0).all()
    q2, s2 = canonical_frames(q, s)  # idempotent
    assert torch.allclose(q2, q, atol=1e-15) and torch.equal(s2, s)
    # every one of the 24 equivalent frames of a Gaussian (with distinct scales) maps to one frame
    one_q, one_s = quats[70:71].expand(24, 4).clone(), log_scales[70:71].expand(24, 3).clone()
    turns = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)
    c = 2**-0.5
    swaps = [
        ([0, 1, 2], [1.0, 0, 0, 0]),
        ([1, 0, 2], [c, 0, 0, c]),
        ([2, 1, 0], [c, 0, c, 0]),
        ([0, 2, 1], [c, c, 0, 0]),
        ([1, 2, 0], [0.5, 0.5, 0.5, 0.5]),
        ([2, 0, 1], [0.5, -0.5, -0.5, -0.5]),
    ]
    i = 0
    for _order, p in swaps:
        for t in turns:
            r = quat_multiply(torch.tensor(p, dtype=torch.float64), t)
            one_q[i] = quat_multiply(quats[70], r)
            # R' = R P: local axis j of the new frame is P e_j; its scale is the old one along it
            axes = quat_to_rotmat(r[None])[0].abs().argmax(0)
            one_s[i] = log_scales[70][axes]
            i += 1
    assert torch.allclose(
        covariance_3d(one_q, one_s.exp()),
        covariance_3d(quats[70:71], log_scales[70:71].exp()).expand(24, 3, 3),
        atol=1e-12,
    )
    cq, cs = canonical_frames(one_q, one_s)
    assert (cq - cq[:1]).abs().max() < 1e-12, (cq - cq[:1]).abs().max()
    assert torch.equal(cs, cs[:1].expand(24, 3))


def test_gradients_are_those_of_the_covariance():
    """Locally Σ(canonical_frames(q, s)) is Σ(q, s), so the gradients through it are the same."""
    quats, log_scales = random_frames(500)
    w = torch.randn(500, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    grads = []
    for canon in (False, True):
        q, s = quats.clone().requires_grad_(), log_scales.clone().requires_grad_()
        qq, ss = canonical_frames(q, s) if canon else (q, s)
        (covariance_3d(qq, ss.exp()) * w).sum().backward()
        grads.append((q.grad, s.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-10) and torch.allclose(grads[0][1], grads[1][1], atol=1e-10)
