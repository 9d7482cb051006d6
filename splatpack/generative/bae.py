"""Binary autoencoder (BAE) of Binary Latent Diffusion (Wang, Wang, Liu, Qiu, "Binary Latent
Diffusion", CVPR 2023, §3.1) over standardised attribute grids.

The encoder maps a grid [C, H, W] to logits ℓ of a latent grid [B, H/f, W/f] (B bits per
position, f = 2^``downsample``); the bits are Bernoulli(σ(ℓ)) (eq. 1). Training samples them and
passes gradients with the straight-through estimator, z = b + σ(ℓ) − sg(σ(ℓ)); evaluation
thresholds σ(ℓ) at ½. The decoder maps the bits back to a grid; the loss is the squared error on
standardised channels, optionally weighted per channel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

__all__ = ["BAEConfig", "BinaryAutoencoder", "reconstruction_loss", "straight_through_bits"]


@dataclass(frozen=True)
class BAEConfig:
    """A BAE's shape: ``channels`` of the grid, ``latent_bits`` per latent position, ``width``
    features of the convolutions, ``downsample`` stride-2 stages (latent side = grid side / 2^n),
    ``blocks`` residual blocks at each resolution."""

    channels: int = 14
    latent_bits: int = 32
    width: int = 32
    downsample: int = 3
    blocks: int = 1

    def validate(self) -> BAEConfig:
        if min(self.channels, self.latent_bits, self.width) < 1 or self.downsample < 0 or self.blocks < 0:
            raise ValueError(f"invalid BAE config {asdict(self)}")
        return self

    @property
    def factor(self) -> int:
        return 2**self.downsample


class _ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8 if width % 8 == 0 else 1, width),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GroupNorm(8 if width % 8 == 0 else 1, width),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def straight_through_bits(logits: Tensor, sample: bool, generator: torch.Generator | None = None) -> Tensor:
    """Binary latents of ``logits``: Bernoulli samples with the straight-through gradient of
    σ(ℓ) when ``sample``, else σ(ℓ) > ½ (no gradient)."""
    p = torch.sigmoid(logits)
    if not sample:
        return (logits > 0).to(logits.dtype)
    bits = (torch.rand(p.shape, generator=generator, dtype=p.dtype) < p.detach()).to(p.dtype)
    return bits + (p - p.detach())  # exactly the bits; the gradient of σ(ℓ)


class BinaryAutoencoder(nn.Module):
    """Conv encoder → Bernoulli latents → conv decoder (BLD's BAE)."""

    def __init__(self, config: BAEConfig):
        super().__init__()
        self.config = config.validate()
        w = config.width
        enc: list[nn.Module] = [nn.Conv2d(config.channels, w, 3, padding=1)]
        for _ in range(config.downsample):
            enc += [_ResBlock(w) for _ in range(config.blocks)]
            enc += [nn.Conv2d(w, w, 4, stride=2, padding=1)]
        enc += [_ResBlock(w) for _ in range(config.blocks)]
        enc += [nn.GroupNorm(8 if w % 8 == 0 else 1, w), nn.SiLU(), nn.Conv2d(w, config.latent_bits, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(config.latent_bits, w, 3, padding=1)]
        dec += [_ResBlock(w) for _ in range(config.blocks)]
        for _ in range(config.downsample):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, w, 3, padding=1)]
            dec += [_ResBlock(w) for _ in range(config.blocks)]
        dec += [nn.GroupNorm(8 if w % 8 == 0 else 1, w), nn.SiLU(), nn.Conv2d(w, config.channels, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """[bits, h, w] of the latents of an H×W grid."""
        f = self.config.factor
        if height % f or width % f:
            raise ValueError(f"a {height}×{width} grid does not divide by the BAE's factor {f}")
        return self.config.latent_bits, height // f, width // f

    def encode_logits(self, grids: Tensor) -> Tensor:
        """Bernoulli logits [N, bits, h, w] of standardised grids [N, C, H, W]."""
        self.latent_shape(grids.shape[-2], grids.shape[-1])
        return self.encoder(grids)

    def encode(self, grids: Tensor) -> Tensor:
        """Binary latents (thresholded) of standardised grids."""
        return straight_through_bits(self.encode_logits(grids), sample=False)

    def decode(self, bits: Tensor) -> Tensor:
        """Standardised grids [N, C, H, W] of latents [N, bits, h, w] in {0, 1}."""
        return self.decoder(bits)

    def forward(self, grids: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(reconstruction, latents): sampled straight-through latents in training mode,
        thresholded ones in evaluation mode."""
        bits = straight_through_bits(self.encode_logits(grids), sample=self.training, generator=generator)
        return self.decode(bits), bits


def reconstruction_loss(recon: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean squared error over standardised channels, each channel weighted by ``weights`` [C]
    (normalised to mean 1) when given."""
    err = (recon - target).square().mean(dim=(0, 2, 3))
    if weights is None:
        return err.mean()
    w = weights.to(err) / weights.to(err).mean()
    return (err * w).mean()
