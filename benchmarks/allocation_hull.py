"""What render-aware allocation can reach on a scene, before refinement (issue 15's 3× target).

:func:`splatpack.codecs.grid.allocate.rate_distortion` measures every coding option of every
attribute on the allocation's orbit views (8 of 256 px: each option's bytes and its render MSE
increase ΣΔD) and traces the lower convex hull of modelled (bytes, PSNR) over the pruned
fractions given. This script writes that table and the hull's Pareto front, so that a target
can be bounded: the smallest file the representation (per-attribute quantised grids, JPEG XL or
ANS coded, some Gaussians pruned) reaches at a PSNR, or the PSNR it reaches at a size. The model
is optimistic by a few tenths of a dB where files are made and measured (README: "Allocation and
refinement"); ``--allocate --refine`` adds what refinement recovers on top.

    python benchmarks/allocation_hull.py --input ../shared/splats/plant.splat \\
        --out benchmarks/results/allocation_hull_plant.json [--prune 0 0.1 0.2] [--at-bytes B ...]

Prints the front and, for each ``--at-bytes`` B, the modelled PSNR of the best allocation within B.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from splatpack.codecs.grid.allocate import AllocationConfig, rate_distortion
from splatpack.core.atomic import atomic_write_text
from splatpack.formats import load_scene


def pareto_front(hull) -> list[dict]:
    """The hull candidates that no smaller candidate matches in modelled PSNR, by bytes."""
    front, best = [], float("-inf")
    for c in sorted(hull, key=lambda c: (c.predicted_bytes, -c.predicted_psnr)):
        if c.predicted_psnr > best:
            best = c.predicted_psnr
            front.append({"bytes": c.predicted_bytes, "psnr": round(c.predicted_psnr, 3), "allocation": c.describe()})
    return front


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--prune", type=float, nargs="*", default=[0.0, 0.1, 0.2])
    ap.add_argument("--at-bytes", type=int, nargs="*", default=[])
    args = ap.parse_args()
    gs = load_scene(args.input)
    cfg = AllocationConfig(prune_fractions=tuple(args.prune))
    with tempfile.TemporaryDirectory() as work:
        hull, table = rate_distortion(gs, work, config=cfg, say=print)
    front = pareto_front(hull)
    at_bytes = {}
    for b in args.at_bytes:
        within = [r for r in front if r["bytes"] <= b]
        at_bytes[str(b)] = within[-1] if within else None
    out = {
        "input": Path(args.input).name,
        "num_gaussians": len(gs),
        "views": cfg.views,
        "render_size": cfg.render_size,
        "prune_fractions": list(args.prune),
        "options": {
            a: [{"option": m.option.short(), "bytes": m.bytes, "delta_mse_sum": float(m.delta_mse.sum())} for m in ms]
            for a, ms in table.items()
        },
        "front": front,
        "at_bytes": at_bytes,
    }
    atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    for r in front:
        print(f"{r['bytes']:>11,} B {r['psnr']:6.2f} dB  {r['allocation']}")
    for b, r in at_bytes.items():
        print(f"within {int(b):,} B: " + (f"{r['psnr']:.2f} dB ({r['allocation']})" if r else "nothing"))


if __name__ == "__main__":
    main()
