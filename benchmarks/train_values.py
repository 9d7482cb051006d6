"""Train the shipped value model (issue 14, mode b): the grid codec's quantised attribute images
of the 27 training objects of objects10k (:func:`held_out_split`: 6 held out), each object
turned by ``--variants`` random angles about the up axis with its own PLAS seed; or, with
``--inputs``, the given splat files instead (e.g. a scene, to bound what a model of scenes
could gain).

    nice -n 5 .venv/bin/python benchmarks/train_values.py --cache /tmp/values.npz \
        --out splatpack/generative/weights/values-v1.pt
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from splatpack.codecs.prior.modelfile import load_coding_model, save_coding_model
from splatpack.codecs.prior.planes import DEFAULT_LAYOUT
from splatpack.codecs.prior.training import ValueTrainConfig, scene_values, train_value_model
from splatpack.formats import load_scene
from splatpack.generative.grids import held_out_split
from splatpack.generative.valuemodel import ValueModel, ValueModelConfig, residual_scales

OBJECTS = Path(__file__).resolve().parents[2] / "shared" / "splats" / "objects10k"


def build_images(paths: list[Path], variants: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for path in paths:
        gs = load_scene(path)
        for v in range(variants):
            angle = 0.0 if v == 0 else float(rng.uniform(0, 2 * math.pi))
            out.append(scene_values(gs, DEFAULT_LAYOUT, angle, seed=v).astype(np.uint16))
        print(f"{path.name}: {variants} grids of {out[-1].shape}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, required=True, help="images of the training grids (.npz)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--cells", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0, help="of the cells drawn per step")
    ap.add_argument("--init", type=Path, help="continue from this value-model file's weights (its config)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-only", action="store_true")
    ap.add_argument("--inputs", type=Path, nargs="+", help="train on these splat files instead of objects10k")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = sorted(p.stem for p in OBJECTS.glob("*.splat"))
    train, held_out = held_out_split(names)
    paths = args.inputs or [OBJECTS / f"{name}.splat" for name in train]
    if args.inputs:
        held_out = []
    if args.cache.exists():
        with np.load(args.cache) as z:
            images = [z[k] for k in sorted(z.files, key=int)]
    else:
        images = build_images(paths, args.variants, seed=0)
        np.savez_compressed(args.cache, **{str(i): im for i, im in enumerate(images)})
    if args.data_only:
        return
    scales = residual_scales([torch.from_numpy(im.transpose(2, 0, 1).astype(np.float64)) for im in images])
    cfg = ValueModelConfig(
        bits=tuple(ch.bits for ch in DEFAULT_LAYOUT), residual_scale=scales, hidden=args.hidden, layers=args.layers
    )
    torch.manual_seed(0)
    start_from = load_coding_model(args.init) if args.init else None
    if start_from is not None:
        model = ValueModel(start_from.model.cfg)
        model.load_state_dict({k: v.float() for k, v in start_from.model.state_dict().items()})
    else:
        model = ValueModel(cfg)
    tcfg = ValueTrainConfig(steps=args.steps, images=args.images, cells=args.cells, lr=args.lr, seed=args.seed)

    def log(step: int, loss: float, seconds: float) -> None:
        if step % 100 == 0 or step == tcfg.steps - 1:
            print(f"step {step} loss {loss:.4f} bits/value {seconds:.0f} s", flush=True)

    start = time.time()
    losses = train_value_model(model, images, tcfg, log)
    seconds = time.time() - start
    if args.out:
        card = {
            "name": args.out.stem,
            "data": (
                ", ".join(p.name for p in args.inputs)
                if args.inputs
                else "objects10k (27 training objects; held out: " + ", ".join(held_out) + ")"
            ),
            "held_out": held_out,
            "grid_codec": "quality default (6), SH degree 0",
            "training": {**tcfg.__dict__, "variants": args.variants, "grids": len(images)}
            | (
                {"from": f"{args.init.stem} (sha256 {start_from.sha256})", "from_card": start_from.card}
                if args.init
                else {}
            ),
            "cpu_seconds": round(seconds, 1),
            "threads": args.threads,
            "final_loss_bits_per_value": round(float(np.mean(losses[-100:])), 4),
            "licences": (
                "those of the inputs"
                if args.inputs
                else "objects10k: see ../shared/splats/objects10k/LICENSES.txt (CC0, CC-BY-3.0/4.0, public domain, Stanford 3D Scanning Repository terms)"
            ),
        }
        sha = save_coding_model(model, DEFAULT_LAYOUT, card, args.out)
        print(json.dumps({"out": str(args.out), "sha256": sha, "seconds": seconds, "bytes": args.out.stat().st_size}))


if __name__ == "__main__":
    sys.exit(main())
