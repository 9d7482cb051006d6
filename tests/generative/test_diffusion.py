"""The Bernoulli diffusion prior (:mod:`splatpack.generative.diffusion`): forward marginals,
the posterior against Bayes' rule, strided sampling, temperature, and a tiny denoiser that
learns one latent."""

from __future__ import annotations

import itertools

import pytest
import torch
from prior_models import one_torch_thread

from splatpack.generative.diffusion import (
    BernoulliSchedule,
    Denoiser,
    DenoiserConfig,
    denoising_loss,
    forward_sample,
    posterior,
    sample,
    sampling_times,
    z0_probability,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule_runs_from_clean_to_a_fair_coin(kind):
    s = BernoulliSchedule(steps=10, kind=kind)
    k = s.k(torch.arange(11))
    assert k[0] == 1 and abs(k[-1].item()) < 1e-12
    assert (k[1:] < k[:-1]).all()
    if kind == "linear":
        assert k[3].item() == pytest.approx(0.7)


def test_forward_marginals_match_k():
    g = torch.Generator().manual_seed(0)
    for k in (0.9, 0.5, 0.1):
        ones = forward_sample(torch.ones(200_000), torch.tensor(k), g).mean().item()
        zeros = forward_sample(torch.zeros(200_000), torch.tensor(k), g).mean().item()
        assert ones == pytest.approx(k + (1 - k) / 2, abs=0.005)
        assert zeros == pytest.approx((1 - k) / 2, abs=0.005)


def _bayes(z_t: int, z0: int, k_s: float, k_t: float) -> float:
    """q(z_s = 1 | z_t, z_0) by enumerating z_s under the forward kernels."""

    def kernel(a: int, b: int, k: float) -> float:  # q(next = a | previous = b)
        return k * (a == b) + (1 - k) / 2

    joint = [kernel(z_t, zs, k_t / k_s) * kernel(zs, z0, k_s) for zs in (0, 1)]
    return joint[1] / sum(joint)


def test_posterior_is_bayes_rule_and_sums_to_one():
    for z_t, z0, (k_s, k_t) in itertools.product((0, 1), (0, 1), [(0.9, 0.6), (0.5, 0.1), (0.3, 0.0)]):
        probs = posterior(torch.tensor(float(z_t)), torch.tensor(float(z0)), torch.tensor(k_s), torch.tensor(k_t))
        assert probs.sum().item() == pytest.approx(1.0)
        assert probs[1].item() == pytest.approx(_bayes(z_t, z0, k_s, k_t))


def test_posterior_marginalises_a_soft_z0():
    z_t, k_s, k_t = torch.tensor(1.0), torch.tensor(0.7), torch.tensor(0.4)
    soft = posterior(z_t, torch.tensor(0.25), k_s, k_t)[1].item()
    assert soft == pytest.approx(0.25 * _bayes(1, 1, 0.7, 0.4) + 0.75 * _bayes(1, 0, 0.7, 0.4))


def test_posterior_at_the_last_step_is_z0():
    s = BernoulliSchedule(steps=8)
    z_t = torch.tensor([0.0, 1.0, 0.0, 1.0])
    z0 = torch.tensor([0.0, 0.0, 1.0, 1.0])
    torch.testing.assert_close(posterior(z_t, z0, s.k(0), s.k(1))[..., 1], z0)
    p0 = torch.tensor([0.2, 0.7, 0.4, 0.9])
    torch.testing.assert_close(posterior(z_t, p0, s.k(0), s.k(1))[..., 1], p0)


def test_sampling_times_are_strided_from_t_to_zero():
    assert sampling_times(64, 4) == [64, 48, 32, 16, 0]
    assert sampling_times(10, 3) == [10, 7, 3, 0]
    assert sampling_times(5, 99) == [5, 4, 3, 2, 1, 0]


def _tiny(seed: int = 0) -> Denoiser:
    torch.manual_seed(seed)
    return Denoiser(DenoiserConfig(bits=4, height=4, width=4, dim=32, layers=2, heads=2))


def test_sampler_returns_binary_latents_and_is_seeded():
    model = _tiny().eval()
    s = BernoulliSchedule(steps=32)
    a = sample(model, s, 3, steps=5, generator=torch.Generator().manual_seed(7))
    b = sample(model, s, 3, steps=5, generator=torch.Generator().manual_seed(7))
    c = sample(model, s, 3, steps=5, generator=torch.Generator().manual_seed(8))
    assert a.shape == (3, 4, 4, 4) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_zero_temperature_makes_the_prediction_hard():
    model = _tiny().eval()
    z_t = (torch.rand(2, 4, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    t = torch.full((2,), 0.5)
    with torch.no_grad():
        soft = z0_probability(model, z_t, t, temperature=1.0)
        hard = z0_probability(model, z_t, t, temperature=0.0)
    assert ((soft > 0) & (soft < 1)).all()
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(hard, (soft > 0.5).float())


def test_denoiser_rejects_latents_of_another_shape():
    with pytest.raises(ValueError, match="expected latents"):
        _tiny()(torch.zeros(1, 4, 8, 8), torch.zeros(1))


def test_tiny_prior_learns_one_latent():
    model = _tiny()
    s = BernoulliSchedule(steps=16)
    target = (torch.rand(1, 4, 4, 4, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        opt.zero_grad()
        denoising_loss(model, target.expand(8, -1, -1, -1), s, g).backward()
        opt.step()
    model.eval()
    samples = sample(model, s, 8, steps=8, generator=torch.Generator().manual_seed(1))
    untrained = sample(_tiny(), s, 8, steps=8, generator=torch.Generator().manual_seed(1))
    assert (samples == target).float().mean() > 0.95
    assert (untrained == target).float().mean() < 0.75
