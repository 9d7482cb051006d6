"""Bernoulli diffusion prior over binary latents (Wang, Wang, Liu, Qiu, "Binary Latent
Diffusion", CVPR 2023, §3.2).

Forward process: each step flips a bit toward a fair coin, q(z_t | z_{t−1}) =
B(z_t; z_{t−1}(1 − β_t) + β_t/2), so q(z_t | z_0) = B(z_t; k_t z_0 + (1 − k_t)/2) with
k_t = ∏(1 − β_i) (eq. 5); here k_t is set directly, linear (1 − t/T) or cosine (cos(πt/2T)),
and from s to t the kernel is the same with k_t / k_s. The denoiser predicts, in BLD's residual
parameterisation, the flip z_0 ⊕ z_t as logits (eq. 9), trained with binary cross-entropy; then
p(z_0 = 1 | z_t) = z_t(1 − p_flip) + (1 − z_t) p_flip. Sampling (eq. 7) draws z_s from the
posterior q(z_s | z_t, z_0) marginalised over that prediction, on a strided subset of the T
steps, with the flip logits divided by a temperature τ (§3.3).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BernoulliSchedule",
    "Denoiser",
    "DenoiserConfig",
    "denoising_loss",
    "forward_sample",
    "posterior",
    "sample",
    "sampling_times",
    "z0_probability",
]


@dataclass(frozen=True)
class BernoulliSchedule:
    """k_t for t = 0..``steps`` (k_0 = 1, k_T = 0): ``linear`` 1 − t/T or ``cosine`` cos(πt/2T)."""

    steps: int = 64
    kind: str = "linear"

    def validate(self) -> BernoulliSchedule:
        if self.steps < 1:
            raise ValueError(f"a schedule needs at least one step, not {self.steps}")
        if self.kind not in ("linear", "cosine"):
            raise ValueError(f"schedule kind must be linear or cosine, not {self.kind!r}")
        return self

    def k(self, t: Tensor | int) -> Tensor:
        """k_t (float64 tensor shaped like ``t``)."""
        u = torch.as_tensor(t, dtype=torch.float64) / self.steps
        if self.kind == "linear":
            return 1 - u
        return torch.cos(u * math.pi / 2).clamp_min(0)


def forward_sample(z0: Tensor, k: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """z_t ~ B(k z_0 + (1 − k)/2) (``k`` broadcast against ``z0``)."""
    p = k.to(z0.dtype) * z0 + 0.5 * (1 - k.to(z0.dtype))
    return (torch.rand(z0.shape, generator=generator, dtype=z0.dtype) < p).to(z0.dtype)


def posterior(z_t: Tensor, p_z0: Tensor, k_s: Tensor, k_t: Tensor) -> Tensor:
    """[..., 2]: the probabilities of z_s = 0 and z_s = 1 given z_t and z_0 ~ B(``p_z0``),
    s < t: Σ_{z_0} q(z_s | z_t, z_0) p(z_0), with q(z_s | z_t, z_0) ∝ q(z_t | z_s) q(z_s | z_0)."""
    dtype = p_z0.dtype
    k_s, k_t = k_s.to(dtype), k_t.to(dtype)
    r = k_t / k_s.clamp_min(1e-12)
    stay, flip = 0.5 * (1 + r), 0.5 * (1 - r)  # q(z_t = z_s | z_s), q(z_t ≠ z_s | z_s)
    like1 = z_t * stay + (1 - z_t) * flip  # q(z_t | z_s = 1)
    like0 = z_t * flip + (1 - z_t) * stay  # q(z_t | z_s = 0)
    near, far = 0.5 * (1 + k_s), 0.5 * (1 - k_s)  # q(z_s = z_0 | z_0), q(z_s ≠ z_0 | z_0)
    given1 = like1 * near / (like1 * near + like0 * far)  # q(z_s = 1 | z_t, z_0 = 1)
    given0 = like1 * far / (like1 * far + like0 * near)  # q(z_s = 1 | z_t, z_0 = 0)
    p1 = p_z0 * given1 + (1 - p_z0) * given0
    return torch.stack([1 - p1, p1], dim=-1)


@dataclass(frozen=True)
class DenoiserConfig:
    """A transformer over the latent positions: ``bits`` per position on an ``height``×``width``
    latent grid, ``dim`` features, ``layers`` blocks of ``heads`` heads."""

    bits: int = 32
    height: int = 8
    width: int = 8
    dim: int = 128
    layers: int = 4
    heads: int = 4

    def validate(self) -> DenoiserConfig:
        if min(self.bits, self.height, self.width, self.dim, self.layers, self.heads) < 1 or self.dim % self.heads:
            raise ValueError(f"invalid denoiser config {asdict(self)}")
        return self


def _timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal features [N, dim] of t ∈ [0, 1] (Vaswani et al. 2017, scaled by 1000)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = 1000 * t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], 1)


class Denoiser(nn.Module):
    """f_θ(z_t, t) → flip logits [N, bits, h, w]: bits → tokens (+ learnt position, + timestep
    MLP), a pre-norm transformer encoder, a linear head."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = config.validate()
        d = config.dim
        self.embed = nn.Linear(config.bits, d)
        self.position = nn.Parameter(torch.randn(config.height * config.width, d) * 0.02)
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        layer = nn.TransformerEncoderLayer(
            d, config.heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.bits)

    def forward(self, z_t: Tensor, t: Tensor) -> Tensor:
        """Flip logits for latents ``z_t`` [N, bits, h, w] at times ``t`` [N] ∈ [0, 1] (t/T)."""
        n, b, h, w = z_t.shape
        c = self.config
        if (b, h, w) != (c.bits, c.height, c.width):
            raise ValueError(f"expected latents [N, {c.bits}, {c.height}, {c.width}], not {list(z_t.shape)}")
        x = self.embed(z_t.flatten(2).transpose(1, 2) * 2 - 1) + self.position
        x = x + self.time(_timestep_embedding(t, c.dim))[:, None]
        x = self.head(self.norm(self.blocks(x)))
        return x.transpose(1, 2).reshape(n, b, h, w)


def denoising_loss(
    model: Denoiser, z0: Tensor, schedule: BernoulliSchedule, generator: torch.Generator | None = None
) -> Tensor:
    """BLD's residual objective: binary cross-entropy of the predicted flip z_0 ⊕ z_t at
    t ~ U{1..T}."""
    n = z0.shape[0]
    t = torch.randint(1, schedule.steps + 1, (n,), generator=generator)
    z_t = forward_sample(z0, schedule.k(t).view(n, 1, 1, 1), generator)
    logits = model(z_t, t.float() / schedule.steps)
    return F.binary_cross_entropy_with_logits(logits, (z0 != z_t).to(logits.dtype))


def z0_probability(model: Denoiser, z_t: Tensor, t: Tensor, temperature: float = 1.0) -> Tensor:
    """p(z_0 = 1 | z_t) from the flip logits divided by ``temperature`` (τ → 0: hard)."""
    p_flip = torch.sigmoid(model(z_t, t) / max(temperature, 1e-6))
    return z_t * (1 - p_flip) + (1 - z_t) * p_flip


def sampling_times(total: int, steps: int) -> list[int]:
    """``steps`` (at most ``total``) strided times from T down to 0, T first and 0 last."""
    steps = max(1, min(steps, total))
    return sorted({round(total * i / steps) for i in range(steps + 1)}, reverse=True)


@torch.no_grad()
def sample(
    model: Denoiser,
    schedule: BernoulliSchedule,
    count: int,
    steps: int | None = None,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``count`` binary latents [count, bits, h, w]: z_T ~ B(½), then ``steps`` strided
    reverse steps z_s ~ Σ_{z_0} q(z_s | z_t, z_0) p_θ(z_0 | z_t)."""
    c = model.config
    z = (torch.rand(count, c.bits, c.height, c.width, generator=generator) < 0.5).float()
    times = sampling_times(schedule.steps, steps or schedule.steps)
    for t, s in itertools.pairwise(times):
        tt = torch.full((count,), t / schedule.steps)
        p0 = z0_probability(model, z, tt, temperature)
        p1 = posterior(z, p0, schedule.k(s), schedule.k(t))[..., 1]
        z = (torch.rand(z.shape, generator=generator) < p1).float()
    return z
