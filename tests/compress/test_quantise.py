"""Per-channel quantisation and its transforms (``splatpack.compress.quantise``)."""

from __future__ import annotations

import numpy as np
import torch

from splatpack.compress.quantise import (
    channel_step,
    dequantise_channels,
    fake_quantise,
    from_smallest_three,
    quantise_channels,
    signed_expm1,
    signed_log1p,
    smallest_three,
    unit_quats_w_positive,
)


def test_signed_log1p_is_odd_and_inverted():
    x = np.array([-1e4, -3.0, -0.5, 0.0, 0.25, 7.0, 1e5])
    t = signed_log1p(x)
    assert np.array_equal(signed_log1p(-x), -t) and t[3] == 0
    assert np.allclose(signed_expm1(t), x, rtol=1e-12)


def test_quantise_within_half_a_step():
    rng = np.random.default_rng(0)
    t = np.concatenate([rng.normal(size=(200, 2)) * [1.0, 30.0], np.full((200, 1), 2.5)], 1)
    for bits in (1, 5, 12, 16):
        q, lo, hi = quantise_channels(t, bits)
        assert q.dtype == np.uint16 and int(q.max()) < 1 << bits and lo.dtype == hi.dtype == np.float32
        step = channel_step(lo, hi, bits)
        assert step.dtype == np.float32 and step[2] == 0 and (q[:, 2] == 0).all()
        back = dequantise_channels(q, lo, hi, bits)
        assert back.dtype == np.float32 and (back[:, 2] == np.float32(2.5)).all()  # a constant channel is exact
        bound = step.astype(np.float64) / 2 * (1 + 1e-5) + 4 * np.finfo(np.float32).eps * (np.abs(t).max(0) + 1)
        assert (np.abs(back - t) <= bound).all(), bits


def test_fake_quantise_is_the_quantiser_straight_through():
    rng = np.random.default_rng(1)
    t = torch.tensor(rng.normal(size=(50, 3)), dtype=torch.float64, requires_grad=True)
    out = fake_quantise(t, 6)
    q, lo, hi = quantise_channels(t.detach().numpy(), 6)
    assert np.allclose(out.detach().numpy(), dequantise_channels(q, lo, hi, 6), atol=1e-6)
    out.sum().backward()
    assert torch.equal(t.grad, torch.ones_like(t))


def test_unit_quats_w_positive():
    q = np.array([[0.0, 0, 0, 0], [-2.0, 0, 0, 0], [1.0, 1, 1, 1], [-0.1, 3, 0, 0]])
    u = unit_quats_w_positive(q)
    assert np.allclose(np.linalg.norm(u, axis=1), 1) and (u[:, 0] >= 0).all()
    assert u[0].tolist() == [1, 0, 0, 0] and u[1].tolist() == [1, 0, 0, 0]  # zero → identity; −q is q
    assert np.allclose(u[3], -q[3] / np.linalg.norm(q[3]))


def test_smallest_three_round_trip():
    rng = np.random.default_rng(2)
    q = unit_quats_w_positive(rng.normal(size=(300, 4)))
    small, k = smallest_three(q)
    assert small.shape == (300, 3) and np.array_equal(k, np.abs(q).argmax(1))
    assert (np.abs(small) <= 1 / np.sqrt(2) + 1e-12).all()
    back = from_smallest_three(small, k)
    assert np.allclose(np.abs((back * q).sum(1)), 1)  # the same rotation (q or −q)
    assert (back[np.arange(300), k] > 0).all()
