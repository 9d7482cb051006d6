"""Train 3D Gaussian Splatting on a capture."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from splatpack.apps.parser import BACKENDS, int_in
from splatpack.apps.terminal import wait_for_ctrl_c
from splatpack.core import SplatpackError
from splatpack.train import StepCallback, Trainer
from splatpack.train.scenes import scene_config
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
    console = Console(stderr=True)
    if args.compact and args.config:
        raise SplatpackError("give --compact (the full preset) or --config, not both")
    settings = {
        "steps": args.steps,
        "backend": args.backend,
        "threads": args.threads or None,
        "downscale": args.downscale,
    }
    spec, cfg, capture = scene_config(args.path, "full" if args.compact else args.config, settings)
    out_dir = args.out or Path("outputs") / spec.name
    f0 = capture.train[0]
    console.print(
        f"[bold]{spec.name}[/]: {capture.format}, {len(capture.train)} train / {len(capture.test)} test views at "
        f"{f0.width}×{f0.height}, {0 if capture.points is None else len(capture.points):,} SfM points → {out_dir}"
    )
    live, callbacks = None, []
    if args.viewer:
        live = LiveTrainingView(capture.train, LiveViewConfig(port=args.viewer_port))
        callbacks.append(StepCallback(lambda step, params: live.update(params, step), every=args.viewer_every))
        console.print(f"live view: {live.url}")
    try:
        metrics = Trainer(capture, cfg, out_dir, console=console, callbacks=callbacks).train(resume=args.resume)
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
