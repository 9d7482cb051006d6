"""The SH rest of a grid scene as codes instead of a grid of coefficients.

* **palette** (``sh_mode="palette"``, as gsplat's PngCompression and SOG's v2 format): k-means
  with K_p centroids over the 3(K−1)-vectors, centroids ordered along their first principal axis
  (so that near labels mean near colours), quantised per channel with ``palette_bits`` and stored
  as a [K_p, K−1, 3] image, and each Gaussian's nearest quantised centroid as a label grid [H, W].
* **residual VQ** (``sh_mode="rvq"``; Compact-3DGS's R-VQ, Lee et al., CVPR 2024,
  :mod:`splatpack.compress.rvq`, applied to the SH rest): S stages of k codes,
  x̂ = Σ_s C_s[k_s], with the codebooks fitted stage by stage on the residuals (or those training
  learned, ``configs/full.yaml``), quantised per stage and channel with ``palette_bits``, the
  labels chosen greedily against the quantised codes and stored as S label planes.
"""

from __future__ import annotations

import numpy as np
import torch

from splatpack.codecs.grid.config import MAX_RVQ_STAGES, GridCodecConfig
from splatpack.compress.kmeans import kmeans_centroids, nearest_code
from splatpack.compress.quantise import dequantise_channels, quantise_channels
from splatpack.compress.rvq import ResidualVQ, ResidualVQConfig
from splatpack.core.errors import SplatpackError

__all__ = [
    "along_principal_axis",
    "fit_palette",
    "fit_residual_palette",
    "label_bits",
    "label_means",
    "principal_axis_order",
]


def fit_palette(t: np.ndarray, cfg: GridCodecConfig, lattice=None):
    """(labels [N] uint16, centroid q [k, D] uint16, lo, hi): k-means, centroids ordered along
    their first principal axis, quantised, then every row's nearest *quantised* centroid.
    ``lattice``: (lo [D], hi [D], labels [N]) fixed by quantisation-aware refinement
    (:mod:`splatpack.train.grid`, which keeps every row at its label's centroid): the centroids
    are then each label's mean row, quantised over (lo, hi), every row keeps its label and
    unused labels are dropped, so the file decodes what refinement rendered."""
    if lattice is not None:
        return _palette_on_labels(t, cfg, *lattice)
    n = t.shape[0]
    k = min(cfg.palette_size, n)
    cent = along_principal_axis(kmeans_centroids(t, k, cfg.palette_iterations, cfg.seed).astype(np.float64))
    q, lo, hi = quantise_channels(cent, cfg.palette_bits)
    deq = dequantise_channels(q, lo, hi, cfg.palette_bits)
    labels = nearest_code(torch.from_numpy(t.astype(np.float32)), torch.from_numpy(deq.astype(np.float32))).numpy()
    return labels.astype(np.uint16), q, lo, hi


def _palette_on_labels(t: np.ndarray, cfg: GridCodecConfig, lo, hi, labels):
    n, dims = t.shape
    lo, hi, labels = np.asarray(lo, np.float32), np.asarray(hi, np.float32), np.asarray(labels)
    if labels.shape != (n,) or lo.shape != (dims,) or hi.shape != (dims,):
        shapes = [v.shape for v in (lo, hi, labels)]
        raise SplatpackError(f"grid codec: an SH-rest palette lattice (lo, hi, labels) of shapes {shapes} for {n} rows")
    if n and (labels.min() < 0 or labels.max() >= cfg.palette_size):
        raise SplatpackError(f"grid codec: SH-rest palette labels outside 0..{cfg.palette_size - 1}")
    _, row_code = np.unique(labels.astype(np.int64), return_inverse=True)
    row_code = row_code.reshape(-1)
    centroids = label_means(torch.from_numpy(np.asarray(t, np.float64)), torch.from_numpy(row_code)).numpy()
    order = principal_axis_order(centroids)
    new_label = np.empty_like(order)
    new_label[order] = np.arange(len(order))
    q, lo, hi = quantise_channels(centroids[order], cfg.palette_bits, lo, hi)
    return new_label[row_code].astype(np.uint16), q, lo, hi


def label_means(rows: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[max label + 1, D]: the mean of the rows [N, D] of each label [N] (int64; 0 where a label
    has no rows)."""
    k = int(labels.max()) + 1 if len(labels) else 0
    sums = torch.zeros(k, rows.shape[1], dtype=rows.dtype, device=rows.device).index_add_(0, labels, rows)
    return sums / torch.bincount(labels, minlength=k).clamp_min(1).to(rows.dtype)[:, None]


def principal_axis_order(codes: np.ndarray) -> np.ndarray:
    """The order [k] of rows [k, D] along their first principal axis (stable)."""
    centred = codes - codes.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(codes) > 1 else np.zeros(codes.shape[1])
    return np.argsort(centred @ axis, kind="stable")


def along_principal_axis(codes: np.ndarray) -> np.ndarray:
    """Rows [k, D] reordered along their first principal axis, so that near labels mean near codes."""
    return codes[principal_axis_order(codes)]


def label_bits(k: int) -> int:
    """Bits of a label into k codes (at least 1)."""
    return max(1, (k - 1).bit_length())


def fit_residual_palette(t: np.ndarray, cfg: GridCodecConfig, codebooks=None):
    """(labels [N, S] uint16, codebook q [S, K, D] uint16, lo [S, D], hi [S, D]): a residual VQ
    of the rows of ``t`` — the given ``codebooks`` [S, K, D] (from training) or a stage-wise
    k-means on the residuals (:meth:`ResidualVQ.init_kmeans`) — each stage's codes ordered along
    their first principal axis and quantised per channel with ``palette_bits``; then each row's
    labels chosen greedily stage by stage against the *quantised* codebooks, so that the decoder's
    Σ_s Ĉ_s[k_s] is what the labels were chosen for. Given codebooks with more codes than rows
    are replaced by fitted ones (a file holds at most N codes a stage)."""
    x = torch.from_numpy(np.ascontiguousarray(t, np.float32))
    books = None if codebooks is None else np.asarray(torch.as_tensor(codebooks).detach().cpu(), np.float64)
    if books is not None and books.ndim == 3 and books.shape[1] > len(t):
        books = None  # more codes than Gaussians (a tiny scene): the format holds k ≤ N, so fit afresh
    if books is None:
        k = min(cfg.rvq_size, len(t))
        vq = ResidualVQ(
            t.shape[1],
            ResidualVQConfig(num_stages=cfg.rvq_stages, codebook_size=k, kmeans_iters=cfg.palette_iterations),
        )
        vq.init_kmeans(x, torch.Generator().manual_seed(cfg.seed))
        books = np.asarray(vq.codebooks().detach().cpu(), np.float64)
    if books.ndim != 3 or books.shape[2] != t.shape[1] or not 1 <= books.shape[0] <= MAX_RVQ_STAGES:
        raise SplatpackError(
            f"grid codec: R-VQ codebooks must be [S ≤ {MAX_RVQ_STAGES}, K, {t.shape[1]}], not {books.shape}"
        )
    qs, los, his, labels = [], [], [], []
    r = x.clone()
    for c in books:
        q, lo, hi = quantise_channels(along_principal_axis(c), cfg.palette_bits)
        deq = torch.from_numpy(dequantise_channels(q, lo, hi, cfg.palette_bits).astype(np.float32))
        k = nearest_code(r, deq)
        r -= deq[k]
        qs.append(q), los.append(lo), his.append(hi), labels.append(k.numpy())
    return np.stack(labels, 1).astype(np.uint16), np.stack(qs), np.stack(los), np.stack(his)
