"""What training the SH rest inside the codec's basis is worth in ``compress --refine`` (issue 15, item 5).

With the SH rest coded as a shared PCA basis (``sh_mode="basis"``, quality levels 5–7 and
``--sh-basis``) the grid codec fits its rank-r basis to the scene it is handed and drops the
other ranks. Refinement (:func:`splatpack.train.refine.refine_and_compress`) now fits that basis
at its first step and projects the SH rest onto it after every step (:class:`splatpack.train.grid.GridHooks`),
renders it with its coefficients fake-quantised on the lattice the file is then coded on, and
moves the SH rest at its full 3DGS learning rate (:data:`splatpack.train.refine.SH_REST_LR_SCALE`).
This ablation reruns a fixed number of refinement steps on an SH-3 splat with each part
switched off:

* ``none``: the codec on the input, no refinement;
* ``free-lr0.01``: refinement before this change (no projection, the SH rest rendered as it
  is, at 1 % of its rate, and the codec fitting its own basis and lattice to the result);
* ``free-lr1``: the same at the full rate;
* ``proj-noqat-lr1``: projected, rendered unquantised, the codec's own lattice, full rate;
* ``proj-lr0.01`` / ``proj-lr1`` / ``proj-lr10``: all of it (``proj-lr1`` is the default), the
  SH rest at 1 %, 100 % and 1000 % of its 3DGS rate.

PSNR/SSIM of the decoded file against the original's renders on the bench's orbit ring (views
the refinement never trains on).

    python benchmarks/refine_sh_rest.py [--input PLY] [--ranks 40 24] [--steps 100] [--views 16] [--size 256]

Writes ``benchmarks/results/refine_sh_rest.json`` and ``.md`` after every row.
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
from splatpack.train import grid as grid_hooks
from splatpack.train import refine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: (name, projected, rendered on the file's lattice, SH-rest learning-rate scale)
VARIANTS = [
    ("none", None, None, None),
    ("free-lr0.01", False, False, 0.01),
    ("free-lr1", False, False, 1.0),
    ("proj-noqat-lr1", True, False, 1.0),
    ("proj-lr0.01", True, True, 0.01),
    ("proj-lr1", True, True, 1.0),
    ("proj-lr10", True, True, 10.0),
]


def run_variant(gs, out: Path, codec: GridCodecConfig, steps: int, projected, on_lattice, lr):
    """Write ``gs`` to ``out`` under one variant; returns (bytes, seconds)."""
    t0 = time.perf_counter()
    if projected is None:
        size = write_grid_scene(out, gs, codec)
        return size, time.perf_counter() - t0
    hooks = grid_hooks.GridHooks
    saved = hooks.project_sh_rest, grid_hooks.quantised_sh_rest, hooks.output_ranges, refine.SH_REST_LR_SCALE
    try:  # the ablation: parts of the hooks switched off
        if not projected:
            hooks.project_sh_rest = lambda self, params: None
        if not on_lattice:  # rendered unquantised; the codec fits its own basis and lattice
            grid_hooks.quantised_sh_rest = lambda shn, cfg, lattice=None: shn
            hooks.output_ranges = lambda self: {k: v for k, v in (saved[2](self) or {}).items() if k != "shN"} or None
        refine.SH_REST_LR_SCALE = lr
        metrics = refine.refine_and_compress(gs, out, 0, 6, backend="cpu", steps=steps, codec=codec)
    finally:
        hooks.project_sh_rest, grid_hooks.quantised_sh_rest, hooks.output_ranges, refine.SH_REST_LR_SCALE = saved
    return int(metrics["size_bytes"]), time.perf_counter() - t0


def table(rows: list[dict]) -> str:
    lines = ["| input | rank | variant | bytes | PSNR dB | SSIM | seconds |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['input']} | {r['rank']} | {r['variant']} | {r['bytes']:,} | {r['psnr']:.2f} | "
            f"{r['ssim']:.4f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", type=Path, default=ROOT / "benchmarks/inputs/lego/point_cloud.ply")
    ap.add_argument("--ranks", type=int, nargs="+", default=[40, 24])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--variants", nargs="+", default=[v[0] for v in VARIANTS])
    args = ap.parse_args()
    gs = load_scene(args.input)
    poses, K = orbit_cameras(gs.means, args.views, args.size, 60.0)
    reference = render_views(gs, poses, K, args.size)
    rows = []
    name = args.input.parent.name if args.input.name == "point_cloud.ply" else args.input.stem
    for rank in args.ranks:
        codec = GridCodecConfig.from_quality(6, sh_mode="basis", basis_rank=rank)
        for variant, *switches in VARIANTS:
            if variant not in args.variants:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "scene.spk"
                size, seconds = run_variant(gs, out, codec, args.steps, *switches)
                psnr, ssim = mean_psnr_ssim(render_views(read_grid_scene(out), poses, K, args.size), reference)
            row = dict(input=name, gaussians=len(gs), rank=rank, variant=variant, steps=args.steps)
            row.update(bytes=size, psnr=float(psnr), ssim=float(ssim), seconds=seconds)
            rows.append(row)
            print(json.dumps(row), flush=True)
            atomic_write_text(RESULTS / "refine_sh_rest.json", json.dumps(rows, indent=1) + "\n")
            atomic_write_text(RESULTS / "refine_sh_rest.md", table(rows))


if __name__ == "__main__":
    main()
