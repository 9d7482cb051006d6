"""Residual vector quantisation of Gaussian geometry (Compact-3DGS §3.3, after Zeghidour et
al., "SoundStream", 2021) with two codebook kinds.

R-VQ approximates a vector x by a sum of codewords, one per stage,

    r_0 = x,   k_s = argmin_k ‖r_{s−1} − C_s[k]‖²,   r_s = r_{s−1} − C_s[k_s],   x̂ = Σ_s C_s[k_s],

so S stages of K codes cost S·log2 K bits per vector (Compact-3DGS: S = 6, K = 64 for the
scale and the rotation of every Gaussian). During training the forward pass uses x̂ with a
straight-through gradient to x (x + sg(x̂ − x)).

Codebook kinds:

* ``"ema"`` — what the paper's code runs (vector-quantize-pytorch with decay 0.8): each stage's
  codebook is k-means-initialised on its residuals, then updated by exponential moving averages
  of the residuals assigned to each code, N_k ← γN_k + (1−γ)n_k, S_k ← γS_k + (1−γ)Σ r, C_k =
  S_k / N̂_k (Laplace-smoothed counts). Codes that stop being chosen decay and die.
* ``"simvq"`` — SimVQ (Zhu et al., "Addressing Representation Collapse in Vector Quantized
  Models with One Linear Layer", 2024): C_s = B_s W_s with a frozen basis B_s (k-means-initialised
  here so both kinds start alike) and a learned linear map W_s (d×d, initialised to identity)
  trained by the codebook loss ‖sg(r) − C_s[k]‖². Because every code moves with W, none is
  left behind: no dead codes.

:func:`codebook_usage` reports the fraction of codes used per stage, for both kinds.

Why our own module rather than vector-quantize-pytorch: the decoder (and the web viewer) only
needs ``x̂ = Σ C_s[k_s]``, which must be reproducible bit-for-bit from the codebooks stored
in the file; a 100-line module keeps that contract explicit and dependency-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from splatpack.compress.kmeans import kmeans, nearest_code

__all__ = ["ResidualVQ", "ResidualVQConfig", "codebook_usage", "kmeans", "nearest_code"]


@dataclass
class ResidualVQConfig:
    num_stages: int = 6
    codebook_size: int = 64
    kind: Literal["ema", "simvq"] = "ema"
    decay: float = 0.8  # EMA decay (vector-quantize-pytorch setting in Compact-3DGS)
    kmeans_iters: int = 10
    eps: float = 1e-5  # Laplace smoothing of the EMA cluster sizes


def codebook_usage(indices: Tensor, codebook_size: int) -> list[float]:
    """Fraction of the codes of each stage that at least one vector uses. indices: [N, S]."""
    return [
        float((torch.bincount(indices[:, s].long(), minlength=codebook_size) > 0).float().mean())
        for s in range(indices.shape[1])
    ]


class ResidualVQ(nn.Module):
    """S-stage residual VQ of ``dim``-vectors; see the module docstring."""

    def __init__(self, dim: int, cfg: ResidualVQConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ResidualVQConfig()
        self.dim = dim
        S, K = cfg.num_stages, cfg.codebook_size
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        if cfg.kind == "ema":
            self.register_buffer("embed", torch.zeros(S, K, dim))
            self.register_buffer("cluster_size", torch.ones(S, K))
            self.register_buffer("embed_sum", torch.zeros(S, K, dim))
        elif cfg.kind == "simvq":
            self.register_buffer("basis", torch.zeros(S, K, dim))  # frozen B_s
            self.proj = nn.Parameter(torch.eye(dim).repeat(S, 1, 1))  # learned W_s
        else:
            raise ValueError(f"unknown codebook kind {cfg.kind!r} (ema or simvq)")

    def codebooks(self) -> Tensor:
        """The effective codebooks C_s, [S, K, dim] (differentiable in W for SimVQ)."""
        if self.cfg.kind == "ema":
            return self.embed
        return self.basis @ self.proj

    @torch.no_grad()
    def init_kmeans(self, x: Tensor, generator: torch.Generator | None = None) -> None:
        """k-means on each stage's residuals (Compact-3DGS initialises its codebooks this way)."""
        r = x.detach().float()
        book = []
        for _ in range(self.cfg.num_stages):
            c = kmeans(r, self.cfg.codebook_size, self.cfg.kmeans_iters, generator)
            r = r - c[nearest_code(r, c)]
            book.append(c)
        book = torch.stack(book)
        if self.cfg.kind == "ema":
            self.embed.copy_(book)
            self.embed_sum.copy_(book)
            self.cluster_size.fill_(1.0)
        else:
            self.basis.copy_(book)
            self.proj.data.copy_(torch.eye(self.dim).repeat(self.cfg.num_stages, 1, 1))
        self.initialized.fill_(True)

    def quantize(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(x̂ [N, dim], indices [N, S]) without straight-through or updates."""
        books = self.codebooks()
        r = x.detach()
        idx = []
        xhat = torch.zeros_like(x)
        for s in range(self.cfg.num_stages):
            k = nearest_code(r, books[s].detach())
            code = books[s][k]
            xhat = xhat + code
            r = r - code.detach()
            idx.append(k)
        return xhat, torch.stack(idx, dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Training pass: (x + sg(x̂ − x), indices [N, S], codebook loss).

        EMA codebooks are updated in place from this batch (when ``self.training``); SimVQ
        returns the codebook loss Σ_s ‖sg(r_s) − C_s[k_s]‖² that trains W_s.
        """
        if not bool(self.initialized):
            self.init_kmeans(x)
        xhat, idx = self.quantize(x)
        loss = x.new_zeros(())
        if self.training and self.cfg.kind == "ema":
            self._ema_update(x.detach(), idx)
        elif self.cfg.kind == "simvq":
            loss = ((xhat - x.detach()) ** 2).sum(-1).mean()
        return x + (xhat - x).detach(), idx, loss

    @torch.no_grad()
    def _ema_update(self, x: Tensor, idx: Tensor) -> None:
        g, K = self.cfg.decay, self.cfg.codebook_size
        r = x.float()
        for s in range(self.cfg.num_stages):
            k = idx[:, s]
            counts = torch.bincount(k, minlength=K).float()
            sums = torch.zeros(K, self.dim, device=x.device).index_add_(0, k, r)
            r = r - self.embed[s][k]
            self.cluster_size[s].mul_(g).add_(counts, alpha=1 - g)
            self.embed_sum[s].mul_(g).add_(sums, alpha=1 - g)
            n = self.cluster_size[s].sum()
            smoothed = (self.cluster_size[s] + self.cfg.eps) / (n + K * self.cfg.eps) * n
            self.embed[s].copy_(self.embed_sum[s] / smoothed[:, None])

    @staticmethod
    def decode(indices: Tensor, codebooks: Tensor) -> Tensor:
        """x̂ = Σ_s C_s[k_s] from stored indices [N, S] and codebooks [S, K, dim]."""
        out = torch.zeros(indices.shape[0], codebooks.shape[-1], dtype=codebooks.dtype, device=codebooks.device)
        for s in range(indices.shape[1]):
            out = out + codebooks[s][indices[:, s].long()]
        return out
