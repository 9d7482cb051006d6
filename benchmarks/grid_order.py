"""Grid order and low bits: PLAS against the Hilbert curve, per quality level.

For each input splat and quality level this encodes the scene twice with the grid codec,
``order="plas"`` (SOG's sort) and ``order="hilbert"`` (the positions' 3D Hilbert curve laid into
the grid as a snake, :mod:`splatpack.compress.curve_order`), each with its own low-bit rules
(:func:`splatpack.codecs.grid.config.resolved_low_bits`), and records the bytes per attribute and
the encode seconds. Both orders code the same quantised values (lossless reordering), so they
decode to the same Gaussians and render the same: the bytes alone compare them.

Writes ``benchmarks/results/grid_order.json``. Run it on a quiet machine (the times).

Usage:  python benchmarks/grid_order.py [--input PATH ...] [--qualities 0 3 6 8]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from splatpack.codecs.grid import GridCodecConfig, encode_grid_scene, grid_attribute_bytes
from splatpack.core.atomic import atomic_write_text
from splatpack.formats import load_scene

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "splats"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, nargs="*", default=[SHARED / "plant.splat", SHARED / "biker.spz"])
    ap.add_argument("--qualities", type=int, nargs="*", default=[0, 3, 6, 8])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/grid_order.json")
    args = ap.parse_args()
    rows = []
    for path in args.input:
        gs = load_scene(path)
        for q in args.qualities:
            row = {"input": path.name, "num_gaussians": len(gs), "sh_degree": gs.sh_degree, "quality": q}
            for order in ("plas", "hilbert"):
                cfg = GridCodecConfig.from_quality(q, order=order)
                t0 = time.perf_counter()
                sections, meta = encode_grid_scene(gs, cfg)
                seconds = time.perf_counter() - t0
                parts = grid_attribute_bytes(sections)
                low = {a: e.get("low_bits", 0) for a, e in meta["attributes"].items() if e.get("low_bits")}
                row[order] = {
                    "bytes": sum(parts.values()),
                    "seconds": round(seconds, 3),
                    "parts": parts,
                    "low_bits": low,
                }
            row["hilbert_vs_plas"] = round(row["hilbert"]["bytes"] / row["plas"]["bytes"] - 1, 4)
            rows.append(row)
            print(
                f"{path.name} q{q}: PLAS {row['plas']['bytes']:,} B in {row['plas']['seconds']:.2f} s, "
                f"Hilbert {row['hilbert']['bytes']:,} B in {row['hilbert']['seconds']:.2f} s "
                f"({100 * row['hilbert_vs_plas']:+.1f} %)",
                flush=True,
            )
    out = {"cpu_count": os.cpu_count(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
