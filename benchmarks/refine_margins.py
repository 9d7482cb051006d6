"""What each attribute's bits are worth *after* refinement (issue 15, items 3 and 5).

Render-aware allocation (:mod:`splatpack.codecs.grid.allocate`) chooses each attribute's coding
by its unrefined rate–distortion; ``--allocate --refine`` then refines the choice. This script
starts from the full lego's 52 dB allocation (pruned 10 %, positions 13 bits, colour DC, scales,
rotations and opacity 7, the SH rest a rank-32 basis at 6 bits), moves one setting at a time
(one bit less, a rank, a pruned fraction, the SH rest of a fraction of Gaussians zeroed), codes
it (:func:`splatpack.codecs.grid.encode.encode_grid_scene`) and refines it for a fixed number of
steps (:func:`splatpack.train.refine.refine_and_compress`, the steps 60 s reach), and measures
bytes and PSNR on the bench's orbit views (32 views of 384 px). Variants of the refinement itself
(its loss, learning rates) are applied by replacing the module's constants for that row.

    python benchmarks/refine_margins.py [--variants JSON] [--steps 174] [--out FILE]

Writes ``benchmarks/results/refine_margins.json`` after every row. The committed file's first 22
rows were made by this script's first form (the same computation; the refinement variants
without the unrefined figures), the rest by ``--variants '[{}, {"zero": 0.2}, {"zero": 0.35}]'``
(its first row repeats the first: 2,663,164 B @ 53.37 dB against 2,664,244 B @ 53.34 dB, which
ran for 60 s, and a time budget sets the learning-rate schedule by time rather than steps).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import splatpack.train.refine as refine
import splatpack.train.trainer as trainer
from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid import GridCodecConfig, read_grid_scene
from splatpack.codecs.grid.allocate import REFERENCE_QUALITY, Option
from splatpack.codecs.grid.encode import encode_grid_scene
from splatpack.compress.pruning import kept_indices, orbit_contributions
from splatpack.compress.sh_basis import zeroed_sh_rest
from splatpack.core.atomic import atomic_write_text
from splatpack.formats import load_scene
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras
from splatpack.train.config import LearningRates

ROOT = Path(__file__).resolve().parents[1]
BASE = dict(prune=0.1, means=13, sh0=7, scales=7, quats=7, opacities=7, shN=(6, 32), zero=0.0)
VARIANTS = [
    {},
    {"loss": "l2"},
    {"lr": 0.03},
    {"lr": 0.003},
    {"prune": 0.2},
    {"prune": 0.3},
    {"means": 12},
    {"sh0": 6},
    {"scales": 6},
    {"quats": 6},
    {"opacities": 6},
    {"shN": [5, 32]},
    {"shN": [6, 24]},
    {"shN": [6, 40]},
    {"lr_shn": 0.5},
    {"lr_shn": 2.0},
    {"lr_shn": 3.0},
    {"mult": {"sh0": 5}},
    {"mult": {"opacities": 5}},
    {"mult": {"scales": 5}},
    {"mult": {"means": 5}},
    {"mult": {"quats": 5}},
    {"zero": 0.2},
    {"zero": 0.35},
]


def squared_error_loss(render, target, ssim_lambda, mask=None):
    return ((render - target) ** 2).mean()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", type=Path, default=ROOT / "benchmarks/inputs/lego/point_cloud.ply")
    ap.add_argument("--variants", type=json.loads, default=VARIANTS)
    ap.add_argument("--steps", type=int, default=174)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/refine_margins.json")
    args = ap.parse_args()
    gs = load_scene(args.input)
    poses, K = orbit_cameras(gs.means, 32, 384, 60.0)
    reference = render_views(gs, poses, K, 384)
    weights = orbit_contributions(gs)
    loss, rates = trainer.photometric_loss, LearningRates
    rows = []
    for v in args.variants:
        s = {**BASE, **{k: x for k, x in v.items() if k in BASE}}
        cfg = GridCodecConfig.from_quality(REFERENCE_QUALITY)
        for a in ("means", "sh0", "scales", "quats", "opacities"):
            cfg = Option(a, s[a]).apply(cfg)
        cfg = Option("shN", s["shN"][0], s["shN"][1]).apply(cfg)
        keep = kept_indices(weights, s["prune"])
        g = gs.subset(keep) if s["prune"] else gs
        if s["zero"]:
            g = zeroed_sh_rest(g, s["zero"], weights[keep].numpy())
        refine.LR_SCALE = v.get("lr", 0.01)
        refine.SH_REST_LR_SCALE = v.get("lr_shn", 1.0)
        mult = v.get("mult", {})
        refine.LearningRates = lambda: dataclasses.replace(
            rates(), **{k: getattr(rates(), k) * m for k, m in mult.items()}
        )
        trainer.photometric_loss = squared_error_loss if v.get("loss") == "l2" else loss
        row = dict(variant=v, setting={**s, "shN": list(s["shN"])})
        with tempfile.TemporaryDirectory() as tmp:
            coded = Path(tmp) / "coded.spk"
            sections, meta = encode_grid_scene(g, cfg)
            size = EncodedScene(sections, meta, len(g)).write(coded)
            psnr = mean_psnr_ssim(render_views(read_grid_scene(coded), poses, K, 384), reference)[0]
            row["unrefined"] = dict(bytes=size, psnr=float(psnr))
            out = Path(tmp) / "refined.spk"
            m = refine.refine_and_compress(g, out, 60.0, 10, "cpu", original=gs, codec=cfg, steps=args.steps)
            psnr = mean_psnr_ssim(render_views(read_grid_scene(out), poses, K, 384), reference)[0]
            row["refined"] = dict(bytes=out.stat().st_size, psnr=float(psnr), steps=m["steps"])
        rows.append(row)
        print(json.dumps(row), flush=True)
        atomic_write_text(args.out, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
