"""PLAS on the CPU: sort time at 100k and 1M Gaussians, and what the order buys.

For a trained splat (default: the vanilla lego run's ``point_cloud.ply``, else
``../shared/splats/plant.splat``) this

* sorts its Gaussians with :func:`splatpack.compress.grid_sort.sort_into_grid` on SOG's features
  (position, colour DC, scale), timed; then a 1M-Gaussian set made of copies of it with jitter;
* compares the sorted grid against a random order and a Morton (Z-curve) order of the positions
  laid out row by row: the mean distance between neighbouring cells
  (:func:`~splatpack.compress.grid_sort.neighbour_distance`) and the bytes of the attribute-grid
  scene each order gives (:func:`splatpack.codecs.grid.encode_grid_scene`, same quality).

Targets (issue 4): 100k ≤ 5 s, 1M ≤ 60 s on two cores. Writes
``benchmarks/results/grid_sort.json``. Run it on a quiet machine.

Usage:  python benchmarks/grid_sort.py [--input PATH] [--quality 5] [--skip-1m]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from splatpack.codecs.grid import sort_features as sog_features
from splatpack.compress.grid_sort import grid_shape, neighbour_distance, sort_features, sort_into_grid
from splatpack.core import GaussianSet

ROOT = Path(__file__).resolve().parents[1]
SOG_WEIGHTS = {"means": 1.0, "sh0": 1.0, "scales": 1.0}


def default_input() -> Path:
    for p in (ROOT / "outputs/bench/lego/point_cloud.ply", ROOT.parent / "shared/splats/plant.splat"):
        if p.exists():
            return p
    raise SystemExit("no input splat: pass --input")


def row_major(order: np.ndarray, n: int) -> np.ndarray:
    """A grid index holding ``order`` row by row (empty cells −1)."""
    H, W = grid_shape(n)
    idx = np.full(H * W, -1, np.int64)
    idx[:n] = order
    return idx.reshape(H, W)


def morton_order(means: np.ndarray) -> np.ndarray:
    from splatpack.codecs.compact import morton_encode, quantize_positions

    q, _, _ = quantize_positions(means.astype(np.float64), 16)
    return np.argsort(morton_encode(q), kind="stable")


def grid_bytes(gs: GaussianSet, grid_index: np.ndarray, quality: int) -> int:
    from splatpack.codecs.grid import GridCodecConfig, encode_grid_scene

    sections, _meta = encode_grid_scene(gs, GridCodecConfig.from_quality(quality), grid_index=grid_index)
    return int(sum(len(s.payload) for s in sections))


def jittered_copies(gs: GaussianSet, n: int, seed: int = 0) -> np.ndarray:
    """SOG features of ``n`` Gaussians: copies of ``gs``'s, positions jittered by 1 % of the extent."""
    g = torch.Generator().manual_seed(seed)
    reps = -(-n // len(gs))
    idx = torch.arange(len(gs)).repeat(reps)[:n]
    means = gs.means[idx] + 0.01 * gs.means.std(0) * torch.randn(n, 3, generator=g)
    return sort_features({"means": means, "sh0": gs.sh0[idx], "scales": torch.exp(gs.scales[idx])}, SOG_WEIGHTS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", type=Path, default=None)
    ap.add_argument("--quality", type=int, default=6)
    ap.add_argument("--skip-1m", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/grid_sort.json")
    args = ap.parse_args()
    from splatpack.formats import load_scene

    path = args.input or default_input()
    gs = load_scene(path)
    n = len(gs)
    feats = sog_features(gs, SOG_WEIGHTS)
    sort_into_grid(feats[:4096])  # compile the kernels outside the timing
    t0 = time.perf_counter()
    sorted_idx, stats = sort_into_grid(feats)
    t_sort = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    orders = {
        "plas": sorted_idx,
        "random": row_major(rng.permutation(n), n),
        "morton": row_major(morton_order(gs.means.numpy()), n),
    }
    result = {
        "input": str(path),
        "num_gaussians": n,
        "grid": list(grid_shape(n)),
        "sort_seconds": round(t_sort, 3),
        "sort_passes": stats["passes"],
        "threads": numba_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "quality": args.quality,
        "orders": {},
    }
    for name, idx in orders.items():
        result["orders"][name] = {
            "neighbour_distance": round(neighbour_distance(feats, idx), 5),
            "bytes": grid_bytes(gs, idx, args.quality),
        }
        print(name, result["orders"][name], flush=True)
    print(f"sort {n:,}: {t_sort:.2f} s ({stats['passes']} passes)", flush=True)
    if not args.skip_1m:
        big = jittered_copies(gs, 1_000_000)
        t0 = time.perf_counter()
        big_idx, big_stats = sort_into_grid(big)
        t_big = time.perf_counter() - t0
        result["sort_1m"] = {
            "num_gaussians": 1_000_000,
            "seconds": round(t_big, 3),
            "passes": big_stats["passes"],
            "neighbour_distance": round(neighbour_distance(big, big_idx), 5),
            "neighbour_distance_random": round(
                neighbour_distance(big, row_major(rng.permutation(len(big)), len(big))), 5
            ),
        }
        print(f"sort 1,000,000: {t_big:.2f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(args.out)


def numba_threads() -> int:
    import numba

    return numba.get_num_threads()


if __name__ == "__main__":
    main()
