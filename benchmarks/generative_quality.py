"""Generation quality of a Binary Latent Diffusion model of splat objects (issue 14).

PointFlow's metrics (MMD-CD, COV-CD, 1-NNA-CD; :mod:`splatpack.metrics.point_clouds`) of the
positions of ``--samples`` generated objects against the model's held-out objects (its model card's
split), next to references measured the same way:

* ``bae_reconstruction``: the held-out objects encoded to binary latents and decoded (the ceiling
  the prior can reach through this autoencoder);
* ``random_latents``: uniformly random latents decoded (what the prior adds over none);
* ``training_objects``: the training objects themselves (a generator that memorised them).

Every cloud is ``--points`` positions drawn from the object in its object frame (as the model
sees it). For each sample, the nearest training object by Chamfer distance (a memorisation
check) and the nearest held-out one. Also writes a contact sheet of the samples.

Usage: ``python benchmarks/generative_quality.py [--model M] [--data DIR] [--samples 16]``;
results in ``benchmarks/results/generative_quality.json`` and ``generative_sheet.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from splatpack.apps.generative import contact_sheet, load_model, load_objects
from splatpack.core.images import save_png
from splatpack.generative.grids import augmented_grid, object_frame, subsample, to_object_frame
from splatpack.metrics.point_clouds import pairwise_chamfer, set_metrics

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "splats" / "objects10k"
RESULTS = ROOT / "benchmarks" / "results"


def cloud(gs, points: int, seed: int) -> torch.Tensor:
    """``points`` positions of ``gs`` drawn without replacement (seeded)."""
    return subsample(gs, points, torch.Generator().manual_seed(seed)).means.double()


def metrics(gen: list[torch.Tensor], ref: list[torch.Tensor]) -> dict[str, float]:
    m = set_metrics(pairwise_chamfer(gen, ref), pairwise_chamfer(gen, gen), pairwise_chamfer(ref, ref))
    return {k: round(v, 6) for k, v in dataclasses.asdict(m).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="a model file (default: the shipped one)")
    ap.add_argument("--data", type=Path, default=DATA, help="the folder the model was trained on")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "generative_quality.json")
    ap.add_argument("--sheet", type=Path, default=RESULTS / "generative_sheet.png")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    layout = model.config.layout
    names, objects = load_objects(args.data)
    by_name = {n: to_object_frame(gs, object_frame(gs)) for n, gs in zip(names, objects)}
    train, held = model.info["train"], model.info["held_out"]
    ref = [cloud(by_name[n], args.points, i) for i, n in enumerate(held)]
    train_clouds = [cloud(by_name[n], args.points, i) for i, n in enumerate(train)]

    t0 = time.perf_counter()
    samples = model.generate(args.samples, args.steps, args.temperature, args.seed)
    sample_seconds = time.perf_counter() - t0
    gen = [cloud(gs, args.points, i) for i, gs in enumerate(samples)]
    world = dict(zip(names, objects))
    grids = torch.stack([augmented_grid(world[n], layout, seed=i, rotate=False) for i, n in enumerate(held)])
    recon = [cloud(gs, args.points, i) for i, gs in enumerate(model.reconstruct(grids))]
    g = torch.Generator().manual_seed(args.seed)
    bits = (torch.rand(args.samples, *model.bae.latent_shape(layout.height, layout.width), generator=g) < 0.5).float()
    random = [cloud(gs, args.points, i) for i, gs in enumerate(model.decode(bits))]

    to_train = pairwise_chamfer(gen, train_clouds)
    to_held = pairwise_chamfer(gen, ref)
    nearest = [
        {
            "sample": i,
            "nearest_training": train[int(to_train[i].argmin())],
            "cd_training": round(float(to_train[i].min()), 6),
            "nearest_held_out": held[int(to_held[i].argmin())],
            "cd_held_out": round(float(to_held[i].min()), 6),
        }
        for i in range(len(gen))
    ]
    result = {
        "model": str(args.model or "shipped"),
        "model_sha256": model.content_hash,
        "held_out": held,
        "samples": args.samples,
        "points": args.points,
        "steps": args.steps,
        "temperature": args.temperature,
        "seed": args.seed,
        "sample_seconds": round(sample_seconds, 2),
        "metric": "Chamfer distance: mean squared nearest-neighbour distance, both ways, object frame",
        "sets": {
            "samples": metrics(gen, ref),
            "bae_reconstruction": metrics(recon, ref),
            "random_latents": metrics(random, ref),
            "training_objects": metrics(train_clouds, ref),
        },
        "nearest": nearest,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    save_png(args.sheet, contact_sheet(samples, layout.up, 160))
    for name, m in result["sets"].items():
        print(f"{name:>20}: MMD-CD {m['mmd']:.5f}  COV-CD {m['cov']:.2f}  1-NNA {m['nna']:.2f}")
    print(f"wrote {args.out} and {args.sheet}")


if __name__ == "__main__":
    main()
