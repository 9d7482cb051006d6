"""Low-rank generators of the SH rest: a basis shared by all Gaussians, a few coefficients each.

The SH rest of a degree-3 splat is 45 floats per Gaussian (15 coefficients × 3 colours), 76 % of
an INRIA PLY, yet across a scene those vectors lie close to a low-dimensional subspace. Two
factorisations, both fitted in closed form (SVD) with per-Gaussian importance weights:

* **PCA** over the 3(K−1)-vector (``kind="pca"``): x_n ≈ μ + B c_n with B [3(K−1), r]
  orthonormal, the top-r eigenvectors of the weighted covariance Σ_n w_n (x_n − μ)(x_n − μ)ᵀ.
* **Tucker-2** over coefficient × colour (``kind="tucker"``; the factorisation FLoRA-style
  low-rank SH models use, with the band-major coefficient axis kept whole): X_n ≈ M + U G_n Vᵀ,
  X_n [K−1, 3], U [K−1, r₁], V [3, r₂] orthonormal from the weighted HOSVD (leading left singular
  vectors of the mode-1 and mode-2 unfoldings), core G_n = Uᵀ (X_n − M) V [r₁, r₂]. With r₂ = 3
  it is a basis of coefficients shared by the colour channels; r₂ < 3 also shares colour
  (SH detail is mostly achromatic).

**Distortion.** The real SH basis is orthonormal on the sphere, so the squared colour error of a
Gaussian averaged over view directions is Σ_k ‖x_k − x̂_k‖² / (4π) (Parseval): the coefficient
error *is* the view-averaged colour error, and :func:`colour_mse` reports it weighted by the
Gaussians' importance (e.g. opacity × projected area, as Reduced-3DGS and C3DGS weight them).

**Rank by rate–distortion** (:func:`choose_rank`): the weighted residual energy of rank r is the
sum of the discarded eigenvalues; with b bits per coefficient the rate is about r·b per
Gaussian, and the chosen r minimises D(r) + λ·R(r), or is the smallest r whose D is below a bound.

**Band culling** (:func:`band_degrees`, Reduced-3DGS, Papantonakis et al., 2024): a Gaussian
whose bands above degree d carry less view-averaged colour energy than τ needs only degree d;
zeroing those bands costs almost nothing in an image-coded grid. :func:`zeroed_sh_rest` takes
the same measure at d = 0 as a budget: the fraction of Gaussians whose whole SH rest carries
the least weighted energy become view-independent (a basis-coded grid then stores no
coefficients for them, :mod:`splatpack.codecs.grid.basis`).

Written here because the field's libraries (scikit-learn's PCA, tensorly's Tucker) are not
dependencies of the core, lack per-sample weights in their closed forms, and the whole fit is
three SVDs of small matrices.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError

__all__ = [
    "SHBasis",
    "band_degrees",
    "choose_rank",
    "colour_mse",
    "cull_bands",
    "culled_gaussians",
    "fit_sh_basis",
    "zeroed_sh_rest",
]

FOUR_PI = 4.0 * math.pi


@dataclass(frozen=True)
class SHBasis:
    """A fitted generator of SH rest vectors [N, K−1, 3].

    ``kind="pca"``: ``mean`` [K−1, 3], ``left`` [3(K−1), r], ``right`` None.
    ``kind="tucker"``: ``mean`` [K−1, 3], ``left`` U [K−1, r₁], ``right`` V [3, r₂]."""

    kind: Literal["pca", "tucker"]
    mean: np.ndarray
    left: np.ndarray
    right: np.ndarray | None = None

    @property
    def coefficients(self) -> int:
        """Coefficients per Gaussian: r (PCA) or r₁·r₂ (Tucker)."""
        return self.left.shape[1] * (1 if self.right is None else self.right.shape[1])

    def project(self, shn: np.ndarray) -> np.ndarray:
        """Coefficients [N, coefficients] of ``shn`` [N, K−1, 3] (orthogonal projection)."""
        d = np.asarray(shn, np.float64) - self.mean
        if self.kind == "pca":
            return d.reshape(len(d), -1) @ self.left
        return np.einsum("kr,nkc,cs->nrs", self.left, d, self.right).reshape(len(d), -1)

    def reconstruct(self, coefs: np.ndarray) -> np.ndarray:
        """SH rest [N, K−1, 3] from coefficients [N, coefficients]."""
        c = np.asarray(coefs, np.float64)
        if self.kind == "pca":
            return self.mean + (c @ self.left.T).reshape(len(c), *self.mean.shape)
        r1, r2 = self.left.shape[1], self.right.shape[1]
        return self.mean + np.einsum("kr,nrs,cs->nkc", self.left, c.reshape(len(c), r1, r2), self.right)


def _weights(n: int, weights: np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / max(n, 1))
    w = np.asarray(weights, np.float64).reshape(-1)
    if w.shape[0] != n or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise SplatpackError("SH basis weights must be N finite non-negative numbers, not all zero")
    return w / w.sum()


def fit_sh_basis(
    shn: np.ndarray,
    rank: int | tuple[int, int],
    kind: Literal["pca", "tucker"] = "pca",
    weights: np.ndarray | None = None,
) -> SHBasis:
    """Fit a rank-``rank`` basis (an int for PCA, (r₁, r₂) for Tucker) to ``shn`` [N, K−1, 3]."""
    x = np.asarray(shn, np.float64)
    if x.ndim != 3 or x.shape[2] != 3 or x.shape[1] < 1:
        raise SplatpackError(f"SH rest must be [N, K-1, 3] with K > 1, not {list(x.shape)}")
    n, k, _ = x.shape
    w = _weights(n, weights)
    mean = np.einsum("n,nkc->kc", w, x)
    d = (x - mean) * np.sqrt(w)[:, None, None]
    if kind == "pca":
        r = int(rank) if np.isscalar(rank) else -1
        if not 1 <= r <= 3 * k:
            raise SplatpackError(f"PCA rank must be 1..{3 * k}, not {rank!r}")
        vt = np.linalg.svd(d.reshape(n, -1), full_matrices=False)[2]
        return SHBasis("pca", mean, _padded(vt[:r].T, 3 * k, r))
    if kind == "tucker":
        r1, r2 = (int(v) for v in rank) if not np.isscalar(rank) else (-1, -1)
        if not (1 <= r1 <= k and 1 <= r2 <= 3):
            raise SplatpackError(f"Tucker ranks must be (1..{k}, 1..3), not {rank!r}")
        u = np.linalg.svd(d.transpose(1, 0, 2).reshape(k, -1), full_matrices=False)[0][:, :r1]
        v = np.linalg.svd(d.transpose(2, 0, 1).reshape(3, -1), full_matrices=False)[0][:, :r2]
        return SHBasis("tucker", mean, _padded(u, k, r1), _padded(v, 3, r2))
    raise SplatpackError(f"SH basis kind must be 'pca' or 'tucker', not {kind!r}")


def _padded(m: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``m`` with orthonormal columns completed to ``cols`` (an SVD of fewer samples than ranks
    returns fewer vectors)."""
    if m.shape[1] >= cols:
        return np.ascontiguousarray(m[:, :cols])
    q = np.linalg.qr(np.concatenate([m, np.eye(rows)], axis=1))[0]
    return np.ascontiguousarray(q[:, :cols])


def colour_mse(shn: np.ndarray, approx: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted mean over Gaussians of the view-averaged squared colour error (Parseval)."""
    x = np.asarray(shn, np.float64)
    err = ((x - np.asarray(approx, np.float64)) ** 2).sum(axis=(1, 2)) / FOUR_PI
    return float(_weights(len(x), weights) @ err)


def choose_rank(shn: np.ndarray, weights: np.ndarray | None = None, *, bits: int, lam: float) -> int:
    """The PCA rank r minimising D(r) + λ·r·bits, with D(r) the weighted view-averaged colour
    MSE of the rank-r fit (the discarded weighted eigenvalues / 4π). λ is in MSE per bit."""
    x = np.asarray(shn, np.float64)
    n = len(x)
    w = _weights(n, weights)
    d = (x - np.einsum("n,nkc->kc", w, x)) * np.sqrt(w)[:, None, None]
    energy = np.linalg.svd(d.reshape(n, -1), compute_uv=False) ** 2
    dims = x.shape[1] * 3
    tail = np.concatenate([np.cumsum(energy[::-1])[::-1], [0.0]])  # tail[r]: energy beyond rank r
    tail = np.concatenate([tail, np.zeros(max(0, dims + 1 - len(tail)))])[: dims + 1]
    cost = tail / FOUR_PI + lam * bits * np.arange(dims + 1)
    return int(max(1, np.argmin(cost)))


def band_degrees(shn: np.ndarray, tau: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Each Gaussian's needed SH degree [N] (0..3): the smallest d such that the bands above d
    carry a view-averaged colour energy below ``tau``; with ``weights`` [N] (e.g. the render
    contributions of :func:`splatpack.compress.pruning.contributions`), the energy is scaled by
    each Gaussian's weight over the mean weight, so bands are culled first where renders see
    them least."""
    return np.argmax(_energy_above(shn, weights) < tau, axis=1).astype(np.uint8)


def _energy_above(shn: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """[N, K'] the view-averaged colour energy of each Gaussian's bands above degree d (column d,
    the last 0), times its weight over the mean weight where ``weights`` are given."""
    x = np.asarray(shn, np.float64)
    degree = round(math.sqrt(x.shape[1] + 1)) - 1
    if (degree + 1) ** 2 != x.shape[1] + 1:
        raise SplatpackError(f"SH rest of {x.shape[1]} coefficients is not a whole number of bands")
    per_band = [(x[:, b * b - 1 : (b + 1) ** 2 - 1] ** 2).sum(axis=(1, 2)) / FOUR_PI for b in range(1, degree + 1)]
    above = np.cumsum(np.stack([np.zeros(len(x))] + per_band[::-1], 1), axis=1)[:, ::-1]  # above[:, d]
    if weights is not None:
        w = _weights(len(x), weights) * len(x)  # mean 1
        above = above * w[:, None]
    return above


def zeroed_sh_rest(gs: GaussianSet, fraction: float, weights: np.ndarray | None = None) -> GaussianSet:
    """``gs`` with the whole SH rest of ⌊fraction·N⌋ Gaussians set to zero: those whose SH rest
    carries the least view-averaged colour energy (times the render ``weights`` over their mean,
    as :func:`band_degrees` weighs bands). A degree-0 set, or fraction 0, is returned as it is."""
    if not 0.0 <= fraction < 1.0:
        raise SplatpackError(f"the fraction of SH rests zeroed must be in [0, 1), not {fraction:g}")
    count = int(fraction * len(gs))
    if gs.shN.shape[1] == 0 or count == 0:
        return gs
    shn = gs.shN.detach().cpu()
    energy = _energy_above(shn.numpy(), weights)[:, 0]
    least = torch.from_numpy(np.argsort(energy, kind="stable")[:count])
    shn = shn.clone()
    shn[least] = 0.0
    return dataclasses.replace(gs, shN=shn.to(gs.shN.device))


def cull_bands(shn: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """``shn`` with each Gaussian's bands above its degree set to zero."""
    x = np.array(shn, np.float32, copy=True)
    band_of = np.array([math.isqrt(j + 1) for j in range(x.shape[1])])  # coefficient j → band
    x[band_of[None, :] > np.asarray(degrees)[:, None]] = 0.0
    return x


def culled_gaussians(gs: GaussianSet, tau: float, weights: np.ndarray | None = None) -> tuple[GaussianSet, float]:
    """(``gs`` with each Gaussian's unneeded SH bands zeroed (:func:`band_degrees` with ``tau``
    and optional render weights), the mean degree kept). A degree-0 set is returned as it is."""
    if gs.shN.shape[1] == 0:
        return gs, 0.0
    shn = gs.shN.detach().cpu().numpy()
    degrees = band_degrees(shn, tau, weights)
    return dataclasses.replace(gs, shN=torch.from_numpy(cull_bands(shn, degrees))), float(degrees.mean())
