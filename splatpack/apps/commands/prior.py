"""Train a generative model of splat objects (Binary Latent Diffusion: a binary autoencoder over
PLAS-sorted attribute grids, then a Bernoulli diffusion prior over its latents) on a folder of
splats; a fixed held-out split of the objects is kept out and written, with the objects'
licences, in a model card (MODEL.md) beside the weights. ``--nproc N`` trains data-parallel in N
processes (gloo; or start it with torchrun)."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from splatpack.apps.generative import load_objects, model_card, read_licences
from splatpack.apps.parser import int_in, require_extension
from splatpack.core import SplatpackError
from splatpack.core.atomic import atomic_write_text
from splatpack.core.distributed import init_process_group, ranks_from_environment, spawn
from splatpack.generative.bae import BAEConfig
from splatpack.generative.diffusion import BernoulliSchedule, DenoiserConfig
from splatpack.generative.grids import GridLayout, held_out_split
from splatpack.generative.model import ModelConfig
from splatpack.generative.training import TrainingConfig, train_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("train",), help="what to do (train: fit a model to DATA_DIR).")
    p.add_argument("data", metavar="DATA_DIR", type=Path, help="a folder of splats (.ply, .splat, .spz, .sog, .spk).")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL.pt", help="the model file to write.")
    p.add_argument(
        "--steps", type=int_in(1), metavar="N", help="steps of each stage (autoencoder, prior, latent coder)."
    )
    p.add_argument("--bae-steps", type=int_in(0), default=3000, metavar="N", help="autoencoder steps.")
    p.add_argument("--prior-steps", type=int_in(0), default=6000, metavar="N", help="prior steps.")
    p.add_argument(
        "--coder-steps",
        type=int_in(0),
        default=3000,
        metavar="N",
        help="steps of the latent coder (the prior's masked form, which codes latents in `compress --latent`).",
    )
    p.add_argument(
        "--grid", type=grid_size, default=(64, 64), metavar="HxW", help="Gaussians per grid (sampled per object)."
    )
    p.add_argument("--augmentations", type=int_in(1), default=8, metavar="N", help="augmented grids per object.")
    p.add_argument("--batch", type=int_in(1), default=8, metavar="B", help="grids per step (over all processes).")
    p.add_argument(
        "--nproc", type=int_in(1), default=1, metavar="N", help="data-parallel processes (the batch is split)."
    )
    p.add_argument("--held-out", type=int_in(0), default=6, metavar="K", help="objects kept out for evaluation.")
    p.add_argument("--seed", type=int_in(0), default=0, help="seed of the split, augmentation and training.")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --out.")


def grid_size(text: str) -> tuple[int, int]:
    """``64x64`` → (64, 64); each side a multiple of 8 (the autoencoder's downsampling), at least 8."""
    h, sep, w = text.lower().partition("x")
    if not (sep and h.isdigit() and w.isdigit()) or int(h) < 8 or int(w) < 8 or int(h) % 8 or int(w) % 8:
        raise argparse.ArgumentTypeError(f"{text!r} is not HxW with sides multiples of 8 (e.g. 64x64)")
    return int(h), int(w)


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.stem + ".checkpoint.pt")


def run(args: argparse.Namespace) -> None:
    require_extension(args.out, (".pt",), f"a model is a .pt file: name it {args.out.with_suffix('.pt')}")
    if args.batch % args.nproc:
        raise SplatpackError(f"--batch {args.batch} does not split over --nproc {args.nproc}: give a multiple")
    if args.nproc > 1:
        if ranks_from_environment().distributed:
            raise SplatpackError("this is already a torchrun job: leave out --nproc")
        load_objects(args.data)  # a bad folder gets its one line here, not from every process
        spawn(args.nproc, train_rank, args)
        return
    train_rank(args)


def train_rank(args: argparse.Namespace) -> None:
    """Train as this process's rank (the only one without torchrun or --nproc); rank 0 reports
    and writes the model."""
    ranks = ranks_from_environment()
    if ranks.distributed:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks.world_size))  # the ranks share the cores
        init_process_group(ranks, "cpu")
    names, objects = load_objects(args.data)
    try:
        train_names, held_out = held_out_split(names, args.held_out) if args.held_out else (names, [])
    except ValueError as e:
        raise SplatpackError(str(e), args.data) from None
    train = [gs for n, gs in zip(names, objects) if n in set(train_names)]
    bae_steps = args.steps if args.steps is not None else args.bae_steps
    prior_steps = args.steps if args.steps is not None else args.prior_steps
    coder_steps = args.steps if args.steps is not None else args.coder_steps
    layout = GridLayout(height=args.grid[0], width=args.grid[1])
    model_config = ModelConfig.for_layout(layout, BAEConfig(), DenoiserConfig(), BernoulliSchedule())
    config = TrainingConfig(
        model=model_config,
        augmentations=args.augmentations,
        bae_steps=bae_steps,
        prior_steps=prior_steps,
        coder_steps=coder_steps,
        batch=args.batch,
        seed=args.seed,
    )
    licences = read_licences(args.data)
    info = {
        "data": Path(args.data).name,
        "train": train_names,
        "held_out": held_out,
        "licences": {n: licences[n] for n in names if n in licences},
        "command": "splatpack prior train "
        + shlex.join([Path(args.data).name, "--out", Path(args.out).name])
        + f" --bae-steps {bae_steps} --prior-steps {prior_steps} --coder-steps {coder_steps}"
        + f" --augmentations {args.augmentations}"
        + f" --grid {layout.height}x{layout.width} --held-out {args.held_out} --seed {args.seed}"
        + f" --batch {args.batch}"
        + (f" --nproc {ranks.world_size}" if ranks.distributed else ""),
        "bae_steps": bae_steps,
        "prior_steps": prior_steps,
        "coder_steps": coder_steps,
        "augmentations": args.augmentations,
        "seed": args.seed,
        "device": f"CPU ({platform.machine()})" + (f", {ranks.world_size} processes" if ranks.distributed else ""),
    }
    console = Console(stderr=True, quiet=not ranks.is_main)
    console.print(f"{len(train)} objects to train on, {len(held_out)} held out: {', '.join(held_out) or '-'}")
    columns = [TextColumn("[bold]{task.description:>6}"), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn("{task.fields[stats]}"), TimeRemainingColumn()]
    t0 = time.perf_counter()
    with Progress(*columns, console=console) as progress:
        tasks = {
            "grids": progress.add_task("grids", total=len(train) * args.augmentations, stats=""),
            "bae": progress.add_task("bae", total=bae_steps, stats=""),
            "prior": progress.add_task("prior", total=prior_steps, stats=""),
            "coder": progress.add_task("coder", total=coder_steps, stats=""),
        }
        ema: dict[str, float] = {}

        def on_step(stage: str, step: int, steps: int, loss: float) -> None:
            ema[stage] = loss if stage not in ema else 0.95 * ema[stage] + 0.05 * loss
            progress.update(tasks[stage], completed=step, stats=f"loss {ema[stage]:.4f}")
            if not console.is_terminal and (step % 100 == 0 or step == steps):
                console.print(f"{stage} step {step}/{steps} loss {ema[stage]:.4f}")  # logs and CI

        model = train_model(
            train,
            config,
            checkpoint=checkpoint_path(args.out),
            resume=args.resume,
            info=info,
            on_step=on_step,
            on_grid=lambda i, n: progress.update(tasks["grids"], completed=i),
            ranks=ranks,
        )
    if not ranks.is_main:
        return
    model.info["train_seconds"] = round(time.perf_counter() - t0, 1)
    digest = model.save(args.out, half=True)
    atomic_write_text(args.out.with_suffix(".md"), model_card(model, args.out))
    checkpoint_path(args.out).unlink(missing_ok=True)
    size = args.out.stat().st_size
    print(f"wrote {args.out}: {size:,} bytes, sha256 {digest[:16]}…, model card {args.out.with_suffix('.md')}")
