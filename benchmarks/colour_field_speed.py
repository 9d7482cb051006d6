"""CPU speed of the Compact-3DGS colour field (hash grid + MLP) at N Gaussians.

For each hash-table size (``log2_hashmap_size`` 16 and 19) it times, on random means in the
box and random view directions:

* ``grid_fwd`` / ``grid_bwd`` — the hash encoding alone (numba kernels; table gradient only),
* ``field_fwd`` / ``field_bwd`` — the whole :class:`ColourField` (contraction, encoding, SH,
  MLP), backward of a random upstream gradient into the table and MLP,
* ``adam`` — one ``torch.optim.Adam(fused=True)`` step over all field parameters,

and, for reference, the same field with the pure-torch grid backend (``torch_field_*``).
Reports the median and the minimum over ``--iters`` runs after warm-up (this shared machine is
noisy: medians are the honest number, minima show the uncontended speed).

Usage:  python benchmarks/colour_field_speed.py [--num 100000] [--iters 15] [--threads 2]
        [--out benchmarks/results/colour_field_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numba
import torch

from splatpack.compress.colour_field import ColourField, ColourFieldConfig
from splatpack.compress.hash_grid import HashGridConfig


def _timed(fn, iters: int, warmup: int) -> list[float]:
    out = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        fn()
        if i >= warmup:
            out.append(1e3 * (time.perf_counter() - t0))
    return out


def _stats(ms: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2)}


def bench_field(n: int, log2: int, backend: str, iters: int, warmup: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    cfg = ColourFieldConfig(grid=HashGridConfig(log2_hashmap_size=log2), backend=backend)
    fld = ColourField(cfg)
    means = torch.rand(n, 3) * 2 - 1  # uniform in the box [-1, 1]^3
    dirs = torch.nn.functional.normalize(torch.randn(n, 3), dim=-1)
    g_out = torch.randn(n, 3)
    opt = torch.optim.Adam(fld.parameters(), lr=1e-3, eps=1e-15, fused=True)
    enc = fld.encoding
    x = torch.rand(n, 3) * 0.5 + 0.25
    g_enc = torch.randn(n, enc.n_output_dims)

    res: dict[str, dict[str, float]] = {}
    state: dict[str, torch.Tensor] = {}

    def grid_fwd():
        state["y"] = enc(x)

    def grid_bwd():
        enc.params.grad = None
        state["y"].backward(g_enc)

    def field_fwd():
        state["c"] = fld(means, dirs)

    def field_bwd():
        opt.zero_grad(set_to_none=True)
        state["c"].backward(g_out)

    def adam():
        opt.step()

    # interleave so that machine noise hits all phases alike
    phases = {"grid_fwd": grid_fwd, "grid_bwd": grid_bwd, "field_fwd": field_fwd, "field_bwd": field_bwd, "adam": adam}
    times: dict[str, list[float]] = {k: [] for k in phases}
    for i in range(warmup + iters):
        for name, fn in phases.items():
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append(1e3 * (time.perf_counter() - t0))
    for name, ms in times.items():
        res[name] = _stats(ms)
    fb = [a + b for a, b in zip(times["field_fwd"], times["field_bwd"])]
    res["field_fwd_bwd"] = _stats(fb)
    res["step_total"] = _stats([a + b for a, b in zip(fb, times["adam"])])
    return {
        "log2_hashmap_size": log2,
        "backend": backend,
        "n_params_grid": enc.n_params,
        "n_params_mlp": sum(p.numel() for p in fld.mlp.parameters()),
        "dense_levels": sum(lv.dense for lv in enc.levels()),
        **res,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num", type=int, default=100_000)
    ap.add_argument("--iters", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--torch-backend", action="store_true", help="also time the pure-torch grid backend")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "colour_field_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    runs = []
    for log2 in (16, 19):
        runs.append(bench_field(args.num, log2, "numba", args.iters, args.warmup))
        if args.torch_backend:
            runs.append(bench_field(args.num, log2, "torch", max(3, args.iters // 3), 1))

    cols = ["grid_fwd", "grid_bwd", "field_fwd", "field_bwd", "field_fwd_bwd", "adam", "step_total"]
    print(
        f"N = {args.num}, {args.threads} threads (torch {torch.__version__}, numba {numba.__version__}); median / min ms"
    )
    print(f"{'log2_T':>6} {'backend':>7} " + " ".join(f"{c:>15}" for c in cols))
    for r in runs:
        cells = " ".join(f"{r[c]['median_ms']:>7.1f}/{r[c]['min_ms']:<7.1f}" for c in cols)
        print(f"{r['log2_hashmap_size']:>6} {r['backend']:>7} {cells}")

    result = {
        "benchmark": "colour_field_speed",
        "num_points": args.num,
        "threads": args.threads,
        "iters": args.iters,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "torch": torch.__version__,
        "numba": numba.__version__,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
