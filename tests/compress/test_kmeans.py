"""k-means in its one place (``splatpack.compress.kmeans``): the numpy entry points run the torch
Lloyd seeded, and give exactly its results; ``vector_quantise`` is exact on few distinct rows;
``kmeans_1d`` pads its codebook."""

from __future__ import annotations

import numpy as np
import torch

from splatpack.compress.kmeans import kmeans, kmeans_1d, kmeans_centroids, nearest_code, vector_quantise


def _blobs(n: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0, 0, 0], [5, 5, 0, 0], [0, 5, 5, 0], [5, 0, 0, 5]])
    return centres[rng.integers(0, 4, n)] + 0.1 * rng.normal(size=(n, 4))


def test_numpy_entry_points_are_the_seeded_torch_lloyd():
    x = _blobs()
    ref = kmeans(torch.from_numpy(x.astype(np.float32)), 4, 10, torch.Generator().manual_seed(3))
    c = kmeans_centroids(x, 4, 10, seed=3)
    assert c.dtype == np.float32 and c.tobytes() == ref.numpy().tobytes()
    book, labels = vector_quantise(x, 4, 10, seed=3)
    assert book.tobytes() == ref.numpy().tobytes()
    assert np.array_equal(labels, nearest_code(torch.from_numpy(x.astype(np.float32)), ref).numpy())
    assert kmeans_centroids(x, 4, 10, seed=3).tobytes() == c.tobytes()  # reproducible


def test_vector_quantise_is_exact_on_few_distinct_rows():
    rows = np.array([[1.0, 2.0], [-1.0, 0.5], [3.0, 3.0]], np.float32)
    data = rows[[2, 0, 0, 1, 2, 1]]
    book, labels = vector_quantise(data, 8)
    assert np.array_equal(book, np.unique(rows, axis=0))
    assert np.array_equal(book[labels], data)


def test_kmeans_1d_pads_and_sorts():
    book, labels = kmeans_1d(np.array([[3.0, 1.0], [2.0, 3.0]]), 4)
    assert book.dtype == np.float32 and book.tolist() == [1.0, 2.0, 3.0, 3.0]
    assert labels.dtype == np.uint8 and labels.shape == (2, 2) and book[labels].tolist() == [[3.0, 1.0], [2.0, 3.0]]
