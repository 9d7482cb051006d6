"""What ``--quality Q --refine`` adds per quality level, at a fixed number of refinement steps.

For each level: the level's file (:func:`splatpack.codecs.grid.write_grid_scene`) and the file
refined for ``--steps`` steps (:func:`splatpack.train.refine.refine_and_compress`; a fixed count,
not the time budget of ``--refine SECONDS``, so that runs on a loaded machine compare), each
measured in bytes and PSNR on the bench's orbit views (32 views of 384 px) against the input's
renders. Written to compare refinement before and after a change to it (README: "Twelfth round":
palette levels 0–4 rendered as coded).

    python benchmarks/refine_levels.py --input benchmarks/inputs/lego/point_cloud.ply \\
        --qualities 0 2 4 --steps 174 --out benchmarks/results/refine_levels_lego.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from splatpack.codecs.grid import GridCodecConfig, read_grid_scene, write_grid_scene
from splatpack.core.atomic import atomic_write_text
from splatpack.formats import load_scene
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras
from splatpack.train.refine import refine_and_compress


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--qualities", type=int, nargs="+", default=[0, 2, 4])
    ap.add_argument("--steps", type=int, default=174)  # what 60 s reach on the full lego (refine_margins)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    gs = load_scene(args.input)
    poses, K = orbit_cameras(gs.means, 32, 384, 60.0)
    reference = render_views(gs, poses, K, 384)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for q in args.qualities:
            plain, refined = Path(tmp) / f"q{q}.spk", Path(tmp) / f"q{q}-refined.spk"
            size = write_grid_scene(plain, gs, GridCodecConfig.from_quality(q))
            psnr = mean_psnr_ssim(render_views(read_grid_scene(plain), poses, K, 384), reference)[0]
            start = time.perf_counter()
            m = refine_and_compress(gs, refined, 0, q, "cpu", steps=args.steps)
            seconds = time.perf_counter() - start
            refined_psnr = mean_psnr_ssim(render_views(read_grid_scene(refined), poses, K, 384), reference)[0]
            rows.append(
                {
                    "quality": q,
                    "bytes": size,
                    "psnr": psnr,
                    "refined_bytes": m["size_bytes"],
                    "refined_psnr": refined_psnr,
                    "steps": m["steps"],
                    "refine_seconds": seconds,
                }
            )
            print(f"q{q}: {size:,} B @ {psnr:.2f} dB -> refined {m['size_bytes']:,} B @ {refined_psnr:.2f} dB")
            atomic_write_text(args.out, json.dumps({"input": Path(args.input).name, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
