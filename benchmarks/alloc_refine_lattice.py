"""Allocation then refinement, with and without the lossy SH-rest bases (issue 15, items 3 and 5).

Refinement renders a basis-coded SH rest on the file's own coefficient lattice
(:mod:`splatpack.train.grid`), which models the rounding of lossless coefficient planes exactly
but not the error of lossy JPEG XL planes. Render-aware allocation
(:func:`splatpack.codecs.grid.allocate.allocate`) chooses lossy rank-24/32/40 bases at 49–52 dB
on SH-3 splats because they are smaller *unrefined*. This script allocates for a PSNR target
with the default options and with ``lossy_basis_ranks=()`` (lossless coefficient planes only),
refines each allocation for ``--seconds`` (:func:`splatpack.train.refine.refine_and_compress`, as
``compress --target-psnr DB --allocate --refine SECONDS``) and measures bytes and PSNR/SSIM on the
bench's orbit views (32 views of 384 px, ``splatpack bench``'s protocol).

    python benchmarks/alloc_refine_lattice.py [--input PLY] [--psnrs 52] [--seconds 60]

Writes ``--out`` (default ``benchmarks/results/alloc_refine_lattice.json``) after every row (that
committed file merges ``--psnrs 52 50 --variants lossless`` with ``--psnrs 50 --seconds 240
--variants lossless``, made before the allocation could zero SH rests; the default variant's rows
are the bench's ``splatpack-alloc-refine``, before ``--allocate --refine`` kept the SH rest
lossless: ``rd_bench_lego_sh3_refine_basis.json``). ``alloc_refine_zero.json``: ``--psnrs 52 50
--variants lossless`` with zeroed SH rests among the options (:func:`splatpack.compress.sh_basis.zeroed_sh_rest`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from splatpack.apps.target import Target, allocation_config
from splatpack.codecs.grid import read_grid_scene
from splatpack.codecs.grid.allocate import allocate
from splatpack.core.atomic import atomic_write_text
from splatpack.formats import load_scene
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras
from splatpack.train.refine import refine_and_compress

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", type=Path, default=ROOT / "benchmarks/inputs/lego/point_cloud.ply")
    ap.add_argument("--psnrs", type=float, nargs="+", default=[52.0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--variants", nargs="+", default=["lossless", "default"], choices=["lossless", "default"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/alloc_refine_lattice.json")
    args = ap.parse_args()
    gs = load_scene(args.input)
    poses, K = orbit_cameras(gs.means, 32, 384, 60.0)
    reference = render_views(gs, poses, K, 384)
    rows = []
    for target in args.psnrs:
        for variant in args.variants:
            cfg = allocation_config(Target(psnr=target), to_refine=variant == "lossless")
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                found, _ = allocate(gs, tmp, psnr=target, config=cfg)
                alloc_seconds = time.perf_counter() - t0
                row = dict(input=args.input.parent.name, target=target, variant=variant, setting=found.describe())
                row["refine_seconds"] = args.seconds
                for stage in ("allocated", "refined"):
                    if stage == "refined":
                        out = Path(tmp) / "refined.spk"
                        refine_and_compress(found.scene, out, args.seconds, 10, "cpu", original=gs, codec=found.codec)
                    else:
                        out = found.path
                    psnr, ssim = mean_psnr_ssim(render_views(read_grid_scene(out), poses, K, 384), reference)
                    row[stage] = dict(bytes=out.stat().st_size, psnr=float(psnr), ssim=float(ssim))
                row["allocate_seconds"] = alloc_seconds
            rows.append(row)
            print(json.dumps(row), flush=True)
            atomic_write_text(args.out, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
