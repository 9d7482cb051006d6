"""CPU backend training throughput: iterations per second at 200×200 with 100k Gaussians.

One iteration = render (projection, SH degree 3, compositing), L1 + 0.2·D-SSIM loss, backward,
and a fused Adam step over all parameters — the work of a training step without
densification. Measured for the compiled kernels (``cpu_impl="kernel"``) and, in the same run,
for the pure-torch tiled compositor (``torch_tiled``: torch projection, SH and per-tile
compositing), giving the speed-up.

Usage:  python benchmarks/throughput.py [--ply trained.ply] [--out results/throughput.json]

Without ``--ply`` the scene is 100k random Gaussians in a cube seen from 4 units away
(scales 0.004–0.03, opacities 0.05–0.95); with ``--ply`` a trained scene is used, cut or
repeated to exactly ``--num`` Gaussians, seen from its training cameras' distance.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import torch

from splatpack.core import GaussianSet
from splatpack.metrics import ssim
from splatpack.render import rasterize


def random_scene(n: int, seed: int = 0) -> GaussianSet:
    g = torch.Generator().manual_seed(seed)
    return GaussianSet(
        means=(torch.rand(n, 3, generator=g) * 2 - 1) * 0.8,
        quats=torch.randn(n, 4, generator=g),
        scales=torch.empty(n, 3).uniform_(math.log(0.004), math.log(0.03), generator=g),
        opacities=torch.logit(torch.rand(n, generator=g) * 0.9 + 0.05),
        sh0=torch.randn(n, 1, 3, generator=g) * 0.5,
        shN=torch.randn(n, 15, 3, generator=g) * 0.05,
    )


def camera(width: int, height: int, distance: float = 4.0):
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])  # looking down -z from +z
    c2w[2, 3] = distance
    f = 0.5 * width / math.tan(0.5 * 0.6911)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    return torch.linalg.inv(c2w), K


def iterations_per_second(gs: GaussianSet, impl: str, width: int, height: int, iters: int, warmup: int = 2) -> dict:
    params = gs.to_parameters()
    opts = torch.optim.Adam(params.values(), lr=1e-3, eps=1e-15, fused=True)
    viewmat, K = camera(width, height)
    target = torch.rand(height, width, 3, generator=torch.Generator().manual_seed(1))
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        img, _, info = rasterize(
            params["means"],
            params["quats"],
            torch.exp(params["scales"]),
            torch.sigmoid(params["opacities"]),
            torch.cat([params["sh0"], params["shN"]], 1),
            viewmat,
            K,
            width,
            height,
            sh_degree=3,
            background=torch.ones(3),
            backend="cpu",
            cpu_impl=impl,
        )
        loss = 0.8 * (img - target).abs().mean() + 0.2 * (1 - ssim(img, target))
        loss.backward()
        opts.step()
        opts.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    visible = int((info["radii"] > 0).all(-1).sum())
    return {
        "impl": impl,
        "iters": iters,
        "seconds_per_iter": sum(times) / len(times),
        "it_per_s": len(times) / sum(times),
        "visible_gaussians": visible,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ply", type=Path, default=None)
    ap.add_argument("--num", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--baseline-iters", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/throughput.json"))
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if args.ply:
        from splatpack.formats.ply import load_ply

        gs = load_ply(args.ply)
        reps = -(-args.num // len(gs))
        gs = GaussianSet(
            **{
                k: getattr(gs, k).repeat(reps, *[1] * (getattr(gs, k).dim() - 1))[: args.num]
                for k in ("means", "quats", "scales", "opacities", "sh0", "shN")
            }
        )
        scene = str(args.ply)
    else:
        gs = random_scene(args.num)
        scene = "random"
    kernel = iterations_per_second(gs, "kernel", args.size, args.size, args.iters)
    torch_tiled = iterations_per_second(gs, "torch_tiled", args.size, args.size, args.baseline_iters, warmup=1)
    result = {
        "benchmark": "cpu_training_throughput",
        "scene": scene,
        "num_gaussians": len(gs),
        "resolution": [args.size, args.size],
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "kernel": kernel,
        "torch_tiled": torch_tiled,
        "speedup_vs_torch_tiled": kernel["it_per_s"] / torch_tiled["it_per_s"],
        "target_it_per_s": 5.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
