"""Train the shipped bit-plane model (issue 14, mode b): the grid codec's quantised attribute
images of the 27 training objects of objects10k (:func:`held_out_split`: 6 held out), each
object turned by ``--variants`` random angles about the up axis with its own PLAS seed.

    nice -n 5 .venv/bin/python benchmarks/train_bitplanes.py --cache /tmp/bitplanes.npz \
        --out splatpack/generative/weights/bitplanes-v1.pt
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

from splatpack.codecs.prior.modelfile import save_coding_model
from splatpack.codecs.prior.planes import DEFAULT_LAYOUT, plane_ranks
from splatpack.codecs.prior.training import BitTrainConfig, scene_planes, train_bit_model
from splatpack.formats import load_scene
from splatpack.generative.bitmodel import BitModel, BitModelConfig
from splatpack.generative.grids import held_out_split

OBJECTS = Path(__file__).resolve().parents[2] / "shared" / "splats" / "objects10k"


def build_planes(names: list[str], variants: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        gs = load_scene(OBJECTS / f"{name}.splat")
        for v in range(variants):
            angle = 0.0 if v == 0 else float(rng.uniform(0, 2 * math.pi))
            t = time.time()
            out.append(scene_planes(gs, DEFAULT_LAYOUT, angle, seed=v))
            print(f"{name} variant {v}: {out[-1].shape} in {time.time() - t:.1f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, required=True, help="bit-planes of the training grids (.npz)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=48)
    ap.add_argument("--hidden", type=int, default=48)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--spatial", type=int, default=2, choices=(2, 4))
    ap.add_argument("--phase-major", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = sorted(p.stem for p in OBJECTS.glob("*.splat"))
    train, held_out = held_out_split(names)
    if args.cache.exists():
        with np.load(args.cache) as z:
            planes = [z[k] for k in sorted(z.files, key=int)]
    else:
        planes = build_planes(train, args.variants, seed=0)
        np.savez_compressed(args.cache, **{str(i): p for i, p in enumerate(planes)})
    if args.data_only:
        return
    cfg = BitModelConfig(
        ranks=plane_ranks(DEFAULT_LAYOUT),
        spatial=args.spatial,
        phase_major=args.phase_major,
        hidden=args.hidden,
        blocks=args.blocks,
    )
    torch.manual_seed(0)
    model = BitModel(cfg)
    tcfg = BitTrainConfig(steps=args.steps, batch=args.batch, crop=args.crop)

    def log(step: int, loss: float, seconds: float) -> None:
        if step % 50 == 0 or step == tcfg.steps - 1:
            print(f"step {step} loss {loss:.4f} bits/bit {seconds:.0f} s", flush=True)

    start = time.time()
    losses = train_bit_model(model, planes, tcfg, log)
    seconds = time.time() - start
    if args.out:
        card = {
            "name": args.out.stem,
            "data": "objects10k (27 training objects; held out: " + ", ".join(held_out) + ")",
            "held_out": held_out,
            "grid_codec": "quality default (6), SH degree 0",
            "training": {**tcfg.__dict__, "variants": args.variants, "grids": len(planes)},
            "cpu_seconds": round(seconds, 1),
            "threads": args.threads,
            "final_loss_bits_per_bit": round(float(np.mean(losses[-50:])), 4),
            "licences": "objects10k: see ../shared/splats/objects10k/LICENSES.txt (CC0, CC-BY-3.0/4.0, public domain, Stanford 3D Scanning Repository terms)",
        }
        sha = save_coding_model(model, DEFAULT_LAYOUT, card, args.out)
        print(json.dumps({"out": str(args.out), "sha256": sha, "seconds": seconds, "bytes": args.out.stat().st_size}))


if __name__ == "__main__":
    sys.exit(main())
