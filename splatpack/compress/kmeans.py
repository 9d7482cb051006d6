"""k-means and nearest-codeword search: the one place for them, shared by the residual VQ of
geometry (:mod:`splatpack.compress.rvq`), the SH palettes of grid scenes
(:mod:`splatpack.codecs.grid`) and the SOG writer (:mod:`splatpack.formats.sog`).

* :func:`nearest_code`: the nearest codeword of each row (squared Euclidean);
* :func:`kmeans`: Lloyd's algorithm on the rows of a tensor, from k distinct random samples;
  :func:`kmeans_centroids` and :func:`vector_quantise` run it seeded on a numpy array;
* :func:`kmeans_1d`: scalar k-means from a companding start (SOG's 256-entry codebooks).

Why not a library (faiss, torchpq, scikit-learn): the CPU path needs only these functions, and
for Gaussian geometry (d ≤ 8, K ≤ 256) a numba loop over the codes beats the [N, K] distance
matrix of the matmul form; larger d use the chunked matmul form.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

__all__ = ["kmeans", "kmeans_1d", "kmeans_centroids", "nearest_code", "vector_quantise"]


@numba.njit(cache=True, parallel=True, fastmath=False)
def _nearest_rows(x: np.ndarray, c: np.ndarray, c2: np.ndarray, out: np.ndarray) -> None:
    n, d = x.shape
    for i in numba.prange(n):
        best, arg = np.inf, 0
        for k in range(c.shape[0]):
            dot = 0.0
            for j in range(d):
                dot += x[i, j] * c[k, j]
            v = c2[k] - 2.0 * dot
            if v < best:
                best, arg = v, k
        out[i] = arg


def nearest_code(x: Tensor, codebook: Tensor, chunk: int | None = None) -> Tensor:
    """Index of the nearest codeword (squared Euclidean) for each row of x. [N] int64.

    On the CPU with small vectors (Gaussian geometry: d ≤ 8) a numba loop over the codes, which
    skips the [N, K] distance matrix the matmul form materialises."""
    c2 = (codebook * codebook).sum(-1)
    if x.device.type == "cpu" and x.shape[1] <= 8 and x.dtype == codebook.dtype == torch.float32:
        out_np = np.empty(x.shape[0], dtype=np.int64)
        if x.shape[0]:
            _nearest_rows(
                np.ascontiguousarray(x.detach().numpy()),
                np.ascontiguousarray(codebook.detach().numpy()),
                c2.detach().numpy(),
                out_np,
            )
        return torch.from_numpy(out_np)
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    chunk = chunk or max(1, (1 << 24) // max(1, codebook.shape[0]))  # ≤ 64 MiB of distances at a time
    # one distance buffer for every chunk: a fresh 64 MiB temporary per chunk spent most of a
    # 65,536-code palette's k-means in the kernel, zeroing pages
    buf = torch.empty(min(chunk, x.shape[0]), codebook.shape[0], dtype=x.dtype, device=x.device)
    for i in range(0, x.shape[0], chunk):
        xi = x[i : i + chunk]
        d = buf[: xi.shape[0]]
        torch.addmm(c2, xi, codebook.T, alpha=-2.0, out=d)  # ‖c‖² − 2 x·c: ‖x‖² is the same for every code
        out[i : i + chunk] = d.argmin(-1)
    return out


def kmeans(x: Tensor, k: int, iters: int, generator: torch.Generator | None = None) -> Tensor:
    """Lloyd's k-means from k distinct random samples; empty clusters keep their centre. [k, d]."""
    n = x.shape[0]
    if n == 0:
        return torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device)
    idx = torch.randperm(n, generator=generator)[: min(k, n)].to(x.device)
    centres = x[idx]
    if centres.shape[0] < k:  # fewer points than codes: repeat
        centres = centres[torch.arange(k, device=x.device) % centres.shape[0]]
    centres = centres.clone()
    for _ in range(iters):
        assign = nearest_code(x, centres)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def kmeans_centroids(x: np.ndarray, k: int, iterations: int, seed: int = 0) -> np.ndarray:
    """:func:`kmeans` of the rows of x [N, D] (as float32), seeded: centroids [k, D] float32."""
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    return kmeans(xt, k, iterations, torch.Generator().manual_seed(seed)).numpy()


def vector_quantise(data: np.ndarray, k: int, iterations: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(centroids [k', d], labels [n])`` by :func:`kmeans` on the rows of ``data`` (seeded), each
    label the nearest centroid; exact when ``data`` has at most ``k`` distinct rows (then ``k'`` is
    that number, the distinct rows in sorted order)."""
    uniq = np.unique(np.asarray(data, dtype=np.float32), axis=0)
    x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    if len(uniq) <= k:
        return uniq, nearest_code(x, torch.from_numpy(uniq)).numpy()
    c = kmeans(x, k, iterations, torch.Generator().manual_seed(seed))
    return c.numpy(), nearest_code(x, c).numpy()


def kmeans_1d(values: np.ndarray, k: int = 256, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(codebook [k ≤ 256] float32 ascending, uint8 labels shaped like values)``, each label the nearest entry.

    Exact when there are at most k distinct values; otherwise Lloyd's iterations in 1-D (the cells
    are the intervals between the midpoints) from a companding start."""
    x = np.asarray(values, dtype=np.float64).ravel()
    uniq = np.unique(x)
    if len(uniq) <= k:
        centres = uniq
    else:
        # companding start (code density ∝ p^(1/3), the high-resolution optimum for squared error),
        # min and max included so the tails keep a code; then Lloyd iterations
        hist, edges = np.histogram(x, bins=4096, range=(uniq[0], uniq[-1]))
        cdf = np.concatenate([[0.0], np.cumsum(hist ** (1.0 / 3.0) + 1e-9)])
        centres = np.interp(np.linspace(0.0, 1.0, k), cdf / cdf[-1], edges)
        for _ in range(iterations):
            mid = 0.5 * (centres[1:] + centres[:-1])
            lab = np.searchsorted(mid, x)
            cnt = np.bincount(lab, minlength=len(centres))
            sums = np.bincount(lab, weights=x, minlength=len(centres))
            centres = np.sort(np.where(cnt > 0, sums / np.maximum(cnt, 1), centres))
    book = np.sort(centres.astype(np.float32))
    if len(book) == 0:
        book = np.zeros(1, np.float32)
    book = np.concatenate([book, np.full(k - len(book), book[-1], np.float32)])
    b64 = book.astype(np.float64)
    mid = 0.5 * (b64[1:] + b64[:-1])
    lab = np.searchsorted(mid, x)  # the nearest entry of the float32 codebook
    return book, lab.astype(np.uint8).reshape(np.shape(values))
