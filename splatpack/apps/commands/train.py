"""Train 3D Gaussian Splatting on a capture."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from rich.console import Console

from splatpack.apps.parser import BACKENDS, int_in
from splatpack.apps.terminal import wait_for_ctrl_c
from splatpack.core import SplatpackError
from splatpack.core.distributed import SPAWNED_ENV, ranks_from_environment, spawn
from splatpack.train import StepCallback, Trainer
from splatpack.train.checkpoint import CHECKPOINT_NAME
from splatpack.train.evaluate import RENDERS_DIR
from splatpack.train.outputs import PLY_NAME, SCENE_NAME
from splatpack.train.scenes import resolve_scene, scene_config
from splatpack.view.live import LiveTrainingView, LiveViewConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        metavar="PATH",
        help="a capture folder (Blender, nerfstudio, LLFF, COLMAP), a scene file (scenes/*.yaml) or 'default'.",
    )
    p.add_argument(
        "--config",
        metavar="FILE|NAME",
        help="a method preset applied over the scene's base preset (the scene's overrides "
        "still win): a YAML file, or the name of a shipped one (default, compact, sog, full).",
    )
    p.add_argument(
        "--compact",
        action="store_true",
        help="train the default compact preset, configs/full.yaml "
        "(masking + R-VQ + sorted grids → scene.spk); the same as --config full.",
    )
    p.add_argument(
        "--downscale", type=int_in(1), metavar="N", help="image downscale factor (uses images_N folders when present)."
    )
    p.add_argument("--steps", type=int_in(1), metavar="N", help="training iterations.")
    p.add_argument(
        "--batch-size", type=int_in(1), metavar="B", help="cameras per step (per process with --nproc); default 1."
    )
    p.add_argument(
        "--nproc",
        type=int_in(1, 256),
        default=1,
        metavar="N",
        help="data-parallel training in N processes (torch.distributed: gloo on the CPU, nccl on CUDA); "
        "each renders B cameras of a global batch of N×B. Under torchrun, leave it out.",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: outputs/<scene>).")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="rasterizer: cuda (gsplat) when available, else the compiled CPU kernels.",
    )
    p.add_argument(
        "--resume", action=argparse.BooleanOptionalAction, default=False, help="continue from out/checkpoint.pt."
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in the output folder (refused otherwise, unless --resume).",
    )
    p.add_argument("--threads", type=int_in(0), default=0, metavar="N", help="CPU threads (0 = all cores).")
    p.add_argument(
        "--viewer", action="store_true", help="watch the Gaussians train in the browser (viser, on 127.0.0.1)."
    )
    p.add_argument(
        "--viewer-port",
        type=int_in(0, 65535),
        default=8080,
        metavar="N",
        help="the live view's port (the next free one when taken; 0 = any free port).",
    )
    p.add_argument("--viewer-every", type=int_in(1), default=100, metavar="K", help="steps between live view updates.")


def run(args: argparse.Namespace) -> None:
    if args.compact and args.config:
        raise SplatpackError("give --compact (the full preset) or --config, not both")
    if ranks_from_environment().is_main:
        args.out = args.out or Path("outputs") / resolve_scene(args.path).name  # the name, without loading the capture
        claim_output_folder(args.out, resume=args.resume, overwrite=args.overwrite)
    if args.nproc > 1:
        if ranks_from_environment().distributed:
            raise SplatpackError("this is already a torchrun job: leave out --nproc")
        if args.viewer:
            raise SplatpackError("--viewer watches one process: leave it out with --nproc")
        spawn(args.nproc, train_rank, args)
        report_training(Console(stderr=True), json.loads((args.out / "metrics.json").read_text()), args.out)
        return
    train_rank(args)


RUN_FILES = ("metrics.json", CHECKPOINT_NAME, PLY_NAME, SCENE_NAME, "config.json", "scene.json")


def claim_output_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to train over another run in ``out`` unless resuming it or asked to replace it;
    with ``overwrite``, remove that run's files first (nothing else in the folder)."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    if not found or resume:
        return
    if not overwrite:
        raise SplatpackError(
            f"already holds a run ({', '.join(found)}): pass --resume to continue it or --overwrite to replace it", out
        )
    for name in found:
        (out / name).unlink()
    shutil.rmtree(out / RENDERS_DIR, ignore_errors=True)


def _preset(args: argparse.Namespace) -> str | None:
    return "full" if args.compact else args.config


def _settings(args: argparse.Namespace) -> dict:
    return {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "backend": args.backend,
        "threads": args.threads or None,
        "downscale": args.downscale,
    }


def train_rank(args: argparse.Namespace) -> None:
    """Train as this process's rank (the only one without torchrun or --nproc); rank 0 reports."""
    ranks = ranks_from_environment()
    console = Console(stderr=True, quiet=not ranks.is_main)
    spec, cfg, capture = scene_config(args.path, _preset(args), _settings(args))
    out_dir = args.out or Path("outputs") / spec.name
    f0 = capture.train[0]
    console.print(
        f"[bold]{spec.name}[/]: {capture.format}, {len(capture.train)} train / {len(capture.test)} test views at "
        f"{f0.width}×{f0.height}, {0 if capture.points is None else len(capture.points):,} SfM points → {out_dir}"
    )
    live, callbacks = None, []
    if args.viewer and ranks.is_main:
        live = LiveTrainingView(capture.train, LiveViewConfig(port=args.viewer_port))
        callbacks.append(StepCallback(lambda step, params: live.update(params, step), every=args.viewer_every))
        console.print(f"live view: {live.url}")
    try:
        trainer = Trainer(capture, cfg, out_dir, console=console, callbacks=callbacks, ranks=ranks)
        metrics = trainer.train(resume=args.resume)
        if metrics is None:  # not rank 0
            return
        if ranks.distributed and os.environ.get(SPAWNED_ENV):
            return  # the launching process reports
        report_training(console, metrics, out_dir)
        if live is not None and sys.stdin.isatty():
            live.flush()
            console.print(f"the live view stays at {live.url} (Ctrl-C to quit)")
            wait_for_ctrl_c()
    finally:
        if live is not None:
            live.close()


def report_training(console: Console, metrics: dict, out_dir: Path) -> None:
    """The test metrics on stderr; the path of ``metrics.json`` on stdout."""
    lp = "n/a" if metrics["lpips"] is None else f"{metrics['lpips']:.4f}"
    size = f", scene.spk {metrics['size_bytes']:,} bytes" if "size_bytes" in metrics else ""
    console.print(
        f"done: test PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f}, LPIPS {lp}, "
        f"{metrics['num_gaussians']:,} Gaussians{size}, {metrics['train_seconds']:.0f} s ({metrics['backend']})"
    )
    print(out_dir / "metrics.json", flush=True)
