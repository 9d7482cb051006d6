"""Render a trained scene: its test views, or an orbit video."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatpack.apps.parser import BACKENDS, add_max_gaussians, int_in
from splatpack.apps.render import render_run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        type=Path,
        help="a training output folder (point_cloud.ply or "
        "scene.spk, + scene.json) or a scene file (.ply, .splat, .spz, .sog, .spk).",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: RUN_DIR/renders).")
    p.add_argument(
        "--orbit",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="render an orbit video (mp4) around the scene instead of the test views.",
    )
    p.add_argument("--frames", type=int_in(1), default=120, metavar="N", help="orbit frames.")
    p.add_argument("--fps", type=int_in(1), default=30, metavar="N", help="orbit video frame rate.")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="rasterizer backend.")

    add_max_gaussians(p)


def run(args: argparse.Namespace) -> None:
    for p in render_run(
        args.run_dir, args.out, orbit=args.orbit, frames=args.frames, fps=args.fps, backend=args.backend
    ):
        print(p)
