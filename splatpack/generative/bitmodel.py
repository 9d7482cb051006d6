"""A masked (absorbing-state) bit predictor over binary planes, for lossless coding of bits.

The masked form of Binary Latent Diffusion's prior (Wang et al., CVPR 2023, §3: bits absorbed
into a "masked" state instead of flipped to ½; the absorbing-state discrete diffusion of Austin
et al., "Structured Denoising Diffusion Models in Discrete State-Spaces", NeurIPS 2021, and
MaskGIT, Chang et al., CVPR 2022). Input: binary planes b ∈ {0, 1}^{K×H×W} (K = the bit-planes
of every channel of a quantised grid, or latent bits) of which a mask m ∈ {0, 1}^{K×H×W} says
which are known; output: a logit ℓ_k(y, x) for every bit, p(b = 1 | known bits) = σ(ℓ).

**Decoding order** (:class:`GroupOrder`): bits are revealed in groups, most significant first.
Plane k has a rank r_k (0 = its channel's most significant bit); cell (y, x) a spatial phase s
(checkerboard: (y + x) mod 2; 2×2: one of the four cells of each 2×2 block). Group (r, s) holds
the bits of rank r at cells of phase s, in the order (r, s) = (0, 0), (0, 1), … (rank-major),
or with ``phase_major`` (s, r) = (0, 0), (0, 1), …, so that the cells of a later phase see the
complete values of their neighbours of earlier phases (as an interpolating predictor does).
Each bit lies in exactly one group, and when group g is coded every bit of the groups before
it is known.
So :func:`group_probabilities` — one network evaluation on the bits of groups < g — is an
exact conditional p(b | groups < g) for every bit of group g: an entropy coder at encode and
decode time sees the same numbers as long as both compute the same floats.

**Exactness across machines.** The probabilities are rounded to integers in 2^−16 steps
(clamped to [1, 2^16 − 1], :func:`quantise_probabilities`) before any coder sees them, and the
network runs in float64 at coding time, with batch 1 per group on both sides. The same build on
the same machine gives bit-identical results; across CPUs, BLAS builds or thread counts a
convolution may round differently, and a probability lying within that rounding of a 2^−16
boundary would then differ and break decoding. float64 makes that rare, not impossible.

**Training** (:func:`masked_loss`): the absorbing-state objective on random masks drawn from
the decoding order's own states — a random group g per example, groups < g known — so one
network serves every group; the loss is the cross-entropy, in bits per bit, of group g.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "PROB_BITS",
    "PROB_ONE",
    "BitModel",
    "BitModelConfig",
    "GroupOrder",
    "coding_copy",
    "group_probabilities",
    "masked_loss",
    "quantise_probabilities",
    "random_order_masks",
]

#: probabilities are integers in 2^-PROB_BITS steps
PROB_BITS = 16
PROB_ONE = 1 << PROB_BITS
SPATIAL_PHASES = (2, 4)


@dataclass(frozen=True)
class GroupOrder:
    """The fixed decoding order: ``ranks`` [K] (0 = a channel's most significant bit),
    ``spatial`` phases (2: checkerboard, 4: 2×2 blocks), rank-major or ``phase_major``."""

    ranks: tuple[int, ...]
    spatial: int = 2
    phase_major: bool = False

    def __post_init__(self) -> None:
        if self.spatial not in SPATIAL_PHASES:
            raise ValueError(f"spatial must be one of {SPATIAL_PHASES}, not {self.spatial}")
        if not self.ranks or min(self.ranks) < 0:
            raise ValueError("a group order needs at least one plane and non-negative ranks")

    @property
    def planes(self) -> int:
        return len(self.ranks)

    @property
    def num_groups(self) -> int:
        return (max(self.ranks) + 1) * self.spatial

    def phase(self, height: int, width: int) -> Tensor:
        """[H, W] the spatial phase of every cell (2×2: (0,0), (1,1), (0,1), (1,0) of each block)."""
        y = torch.arange(height)[:, None] % 2
        x = torch.arange(width)[None, :] % 2
        if self.spatial == 2:
            return (y + x) % 2
        return torch.where(y == x, y, 2 + y)  # diagonal first, then the other diagonal

    def group_index(self, height: int, width: int) -> Tensor:
        """[K, H, W] int64: the group of every bit, r · spatial + s (or s · R + r, phase-major)."""
        r = torch.tensor(self.ranks, dtype=torch.int64)[:, None, None]
        s = self.phase(height, width)[None]
        return s * (max(self.ranks) + 1) + r if self.phase_major else r * self.spatial + s

    def groups(self, height: int, width: int, skip: np.ndarray | None = None) -> list[Tensor]:
        """The boolean masks [K, H, W] of the groups in decoding order (planes in ``skip`` [K]
        left out, e.g. planes the decoder already has); empty groups are dropped."""
        gi = self.group_index(height, width)
        if skip is not None:
            gi = gi.masked_fill(torch.as_tensor(skip, dtype=torch.bool)[:, None, None], -1)
        masks = [gi == g for g in range(self.num_groups)]
        return [m for m in masks if bool(m.any())]


@dataclass(frozen=True)
class BitModelConfig:
    """A bit model's shape: K ``planes`` with their ``ranks``, ``spatial`` and ``phase_major``
    (the decoding order, :class:`GroupOrder`),
    ``hidden`` channels (a 1×1 stem), ``blocks`` residual 3×3 blocks with the given ``dilations`` (cycled)."""

    ranks: tuple[int, ...]
    spatial: int = 2
    phase_major: bool = False
    hidden: int = 64
    blocks: int = 4
    dilations: tuple[int, ...] = (1, 2)

    @property
    def planes(self) -> int:
        return len(self.ranks)

    @property
    def order(self) -> GroupOrder:
        return GroupOrder(self.ranks, self.spatial, self.phase_major)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BitModelConfig:
        return cls(**{**d, "ranks": tuple(d["ranks"]), "dilations": tuple(d["dilations"])})


class _Block(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(width, width, 1)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.conv2(nn.functional.gelu(self.conv1(nn.functional.gelu(h))))


class BitModel(nn.Module):
    """Known bits (as ±1, 0 where masked) and the mask in, one logit per bit out: [B, K, H, W]."""

    def __init__(self, cfg: BitModelConfig):
        super().__init__()
        self.cfg = cfg
        k, w = cfg.planes, cfg.hidden
        self.stem = nn.Conv2d(2 * k, w, 1)  # cells mix their own bits; the blocks look around
        dil = cfg.dilations or (1,)
        self.blocks = nn.ModuleList(_Block(w, dil[i % len(dil)]) for i in range(cfg.blocks))
        self.head = nn.Conv2d(w, k, 1)

    def forward(self, bits: Tensor, known: Tensor) -> Tensor:
        """Logits [B, K, H, W] of p(b = 1) for bits [B, K, H, W] (any values where not
        ``known``; only the known ones are read)."""
        dtype = self.head.weight.dtype
        signed = torch.where(known.bool(), 2 * bits.to(dtype) - 1, torch.zeros((), dtype=dtype))  # never −0
        x = torch.cat([signed, known.to(dtype)], 1)
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return self.head(nn.functional.gelu(h))


def quantise_probabilities(logits: Tensor) -> np.ndarray:
    """p(b = 1) = σ(ℓ) as integers in 2^−16 steps, clamped to [1, 2^16 − 1] (int64 numpy)."""
    p = torch.sigmoid(logits.double())
    return torch.round(p * PROB_ONE).clamp(1, PROB_ONE - 1).to(torch.int64).numpy()


@torch.no_grad()
def group_probabilities(model: BitModel, bits: Tensor, known: Tensor, group: Tensor) -> np.ndarray:
    """The quantised p(b = 1 | known bits) [n] of the n bits in ``group`` [K, H, W] (row-major
    order of [K, H, W]), for one grid ``bits`` [K, H, W] whose ``known`` [K, H, W] bits are set.
    Runs in float64, batch 1: the encoder and the decoder call it with the same inputs."""
    if model.head.weight.dtype != torch.float64 or model.training:
        raise ValueError("group_probabilities needs the float64 eval copy of a model (coding_copy)")
    logits = model(bits[None].double(), known[None])[0]
    return quantise_probabilities(logits[group])


def coding_copy(model: BitModel) -> BitModel:
    """A float64 copy of ``model`` in eval mode, what :func:`group_probabilities` runs."""
    return copy.deepcopy(model).double().eval()


def random_order_masks(order: GroupOrder, batch: int, height: int, width: int, generator: torch.Generator):
    """(known [B, K, H, W], target [B, K, H, W]): per example a uniformly random group g of
    ``order``, the bits of groups < g known and those of group g the target."""
    gi = order.group_index(height, width)
    g = torch.randint(order.num_groups, (batch, 1, 1, 1), generator=generator)
    return gi[None] < g, gi[None] == g


def masked_loss(model: BitModel, bits: Tensor, generator: torch.Generator) -> Tensor:
    """The absorbing-state objective for bits [B, K, H, W]: the cross-entropy of a random group
    given the groups before it (:func:`random_order_masks`), in bits per target bit."""
    b, _, h, w = bits.shape
    known, target = random_order_masks(model.cfg.order, b, h, w, generator)
    logits = model(bits, known)
    ce = nn.functional.binary_cross_entropy_with_logits(logits, bits.to(logits.dtype), reduction="none")
    return (ce * target).sum() / target.sum().clamp_min(1) / math.log(2)
