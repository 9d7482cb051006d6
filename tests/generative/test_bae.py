"""The binary autoencoder (:mod:`splatpack.generative.bae`): latent shapes, binary latents,
straight-through gradients into the encoder, channel weights, and a tiny model that learns to
reconstruct one grid."""

from __future__ import annotations

import pytest
import torch
from prior_models import one_torch_thread

from splatpack.generative.bae import BAEConfig, BinaryAutoencoder, reconstruction_loss, straight_through_bits


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _smooth_grid(channels: int = 14, side: int = 16) -> torch.Tensor:
    """A grid [1, C, side, side] of smooth ramps and waves, like a sorted attribute grid."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    return torch.stack([torch.sin((c + 1) * x + c * y) for c in range(channels)])[None]


@pytest.mark.parametrize(("downsample", "bits"), [(2, 8), (3, 4)])
def test_round_trip_shapes_and_binary_latents(downsample, bits):
    torch.manual_seed(0)
    bae = BinaryAutoencoder(BAEConfig(channels=14, latent_bits=bits, width=16, downsample=downsample)).eval()
    grids = torch.randn(2, 14, 32, 16)
    recon, z = bae(grids)
    f = 2**downsample
    assert z.shape == (2, bits, 32 // f, 16 // f) == (2, *bae.latent_shape(32, 16))
    assert recon.shape == grids.shape
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(bae.encode(grids), z)
    bae.train()
    _, z_train = bae(grids, generator=torch.Generator().manual_seed(1))
    assert set(z_train.detach().unique().tolist()) == {0.0, 1.0}


def test_grid_must_divide_by_the_factor():
    bae = BinaryAutoencoder(BAEConfig(width=8, downsample=2))
    with pytest.raises(ValueError, match="factor 4"):
        bae.encode(torch.zeros(1, 14, 18, 16))


def test_straight_through_gradient_is_the_sigmoid_derivative():
    logits = torch.tensor([-2.0, 0.0, 1.5], requires_grad=True)
    bits = straight_through_bits(logits, sample=True, generator=torch.Generator().manual_seed(0))
    (bits * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    p = torch.sigmoid(logits.detach())
    torch.testing.assert_close(logits.grad, torch.tensor([1.0, 2.0, 3.0]) * p * (1 - p))
    assert straight_through_bits(logits, sample=False).tolist() == [0.0, 0.0, 1.0]


def test_sampled_bits_follow_their_probabilities():
    logits = torch.full((20000,), 1.0)
    bits = straight_through_bits(logits, sample=True, generator=torch.Generator().manual_seed(2))
    assert abs(bits.mean().item() - torch.sigmoid(torch.tensor(1.0)).item()) < 0.015


def test_gradient_reaches_the_encoder_through_sampled_latents():
    torch.manual_seed(0)
    bae = BinaryAutoencoder(BAEConfig(latent_bits=4, width=8, downsample=1)).train()
    grids = torch.randn(2, 14, 8, 8)
    recon, _ = bae(grids)
    reconstruction_loss(recon, grids).backward()
    first = bae.encoder[0].weight.grad
    assert first is not None and first.abs().sum() > 0


def test_channel_weights_scale_each_channels_error():
    target = torch.zeros(1, 2, 4, 4)
    recon = torch.cat([torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)], 1)
    assert reconstruction_loss(recon, target).item() == pytest.approx(0.5)
    assert reconstruction_loss(recon, target, torch.tensor([3.0, 1.0])).item() == pytest.approx(0.75)
    assert reconstruction_loss(recon, target, torch.tensor([0.0, 1.0])).item() == pytest.approx(0.0)


def test_tiny_bae_learns_to_reconstruct_one_grid():
    torch.manual_seed(0)
    grid = _smooth_grid(side=8)
    bae = BinaryAutoencoder(BAEConfig(latent_bits=16, width=16, downsample=1))
    opt = torch.optim.Adam(bae.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    bae.eval()
    start = reconstruction_loss(bae(grid)[0], grid).item()
    bae.train()
    for _ in range(80):
        opt.zero_grad()
        reconstruction_loss(bae(grid, generator=g)[0], grid).backward()
        opt.step()
    bae.eval()
    end = reconstruction_loss(bae(grid)[0], grid).item()
    assert end < 0.1 * start
