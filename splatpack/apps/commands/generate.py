"""Generate new splat objects with a Binary Latent Diffusion model (by default the one shipped,
trained on objects10k): latents sampled from the Bernoulli diffusion prior, decoded by the binary
autoencoder into attribute grids; one .spk per sample and sheet.png, a contact sheet of renders,
in the output folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from splatpack.apps.generative import contact_sheet, load_model
from splatpack.apps.parser import float_in, int_in
from splatpack.core.atomic import atomic_folder
from splatpack.core.images import save_png
from splatpack.formats import save_scene

SHEET = "sheet.png"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="the folder to write.")
    p.add_argument(
        "--model", type=Path, metavar="MODEL.pt", help="a model from `splatpack prior train` (default: shipped)."
    )
    p.add_argument("-n", "--count", type=int_in(1, 256), default=8, metavar="N", help="samples to draw.")
    p.add_argument("--steps", type=int_in(1), default=16, metavar="N", help="reverse diffusion steps (strided).")
    p.add_argument(
        "--temperature", type=float_in(0), default=1.0, metavar="T", help="divides the prior's logits (lower: surer)."
    )
    p.add_argument("--seed", type=int_in(0), default=0, help="seed of the sampler.")


def sample_name(i: int) -> str:
    return f"sample_{i:03d}.spk"


def run(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    model = load_model(args.model)
    with Console(stderr=True).status(f"sampling {args.count} objects in {args.steps} steps"):
        samples = model.generate(args.count, args.steps, args.temperature, args.seed)
    names = {sample_name(i) for i in range(len(samples))} | {SHEET}
    status = Console(stderr=True).status("writing the samples and rendering the contact sheet")
    with status, atomic_folder(args.out, may_replace=lambda n: n in names or n.startswith("sample_")) as tmp:
        for i, gs in enumerate(samples):
            save_scene(gs, tmp / sample_name(i))
        save_png(tmp / SHEET, contact_sheet(samples, model.config.layout.up))
    print(
        f"wrote {args.out}: {len(samples)} samples of {len(samples[0]):,} Gaussians and {SHEET} "
        f"(model {model.content_hash[:12]}, {args.steps} steps, temperature {args.temperature:g}, "
        f"seed {args.seed}), {time.perf_counter() - t0:.1f} s"
    )
