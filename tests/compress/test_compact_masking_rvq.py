"""Compact-3DGS's learnable mask (STE, §3.1) and residual VQ of the geometry (§3.3)."""

from __future__ import annotations

import itertools

import pytest
import torch

from splatpack.compress.masking import binary_mask, mask_loss, masked_out
from splatpack.compress.rvq import ResidualVQ, ResidualVQConfig, codebook_usage, kmeans, nearest_code

# ---- masking ------------------------------------------------------------------------------------


def test_binary_mask_is_hard_forward_soft_backward():
    m = torch.tensor([-10.0, -4.0, 0.0, 3.0], requires_grad=True)
    b = binary_mask(m, 0.01)
    assert b.tolist() == [0.0, 1.0, 1.0, 1.0]  # σ(−4) = 0.018 > 0.01
    b.sum().backward()
    s = torch.sigmoid(m.detach())
    assert torch.allclose(m.grad, s * (1 - s))
    assert masked_out(m, 0.01).tolist() == [True, False, False, False]
    assert torch.isclose(mask_loss(m), s.mean())


# ---- residual VQ --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ema", "simvq"])
def test_residual_vq_stages_reduce_error_and_decode_matches(kind):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 4, generator=g)
    vq = ResidualVQ(4, ResidualVQConfig(num_stages=4, codebook_size=16, kind=kind))
    vq.init_kmeans(x, generator=g)
    books = vq.codebooks().detach()
    errs, r = [], x.clone()
    for s in range(4):  # each stage lowers the error
        r = r - books[s][nearest_code(r, books[s])]
        errs.append(float((r**2).mean()))
    assert all(b < a for a, b in itertools.pairwise(errs)) and errs[-1] < 0.5 * float((x**2).mean())
    before = vq.codebooks().detach().clone()  # EMA updates the codebooks after quantising
    out, idx, loss = vq(x.requires_grad_())
    xhat = ResidualVQ.decode(idx, before)
    assert torch.allclose(out.detach(), xhat, atol=1e-6)
    out.sum().backward()  # straight-through: the gradient reaches x unchanged
    assert torch.equal(x.grad, torch.ones_like(x))
    if kind == "simvq":
        loss.backward()
        assert vq.proj.grad is not None and vq.proj.grad.abs().sum() > 0
    assert len(codebook_usage(idx, 16)) == 4


def test_ema_codebook_tracks_its_data():
    torch.manual_seed(0)
    vq = ResidualVQ(2, ResidualVQConfig(num_stages=1, codebook_size=4, decay=0.5))
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    x = centres.repeat(250, 1) + 0.01 * torch.randn(1000, 2)
    vq.init_kmeans(x)
    for _ in range(20):
        vq(x + torch.tensor([1.0, 1.0]))  # the data moves; EMA codebooks follow it
    got = vq.codebooks()[0].sort(dim=0).values
    assert torch.allclose(got, (centres + 1).sort(dim=0).values, atol=0.05)


def test_kmeans_finds_clusters():
    torch.manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = centres.repeat(100, 1) + 0.1 * torch.randn(300, 2)
    c = kmeans(x, 3, 20, torch.Generator().manual_seed(3))
    d = torch.cdist(centres, c).min(1).values
    assert (d < 0.2).all()
