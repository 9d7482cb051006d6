"""Structure-from-motion with pycolmap on the CPU: photos → COLMAP model in OUT/sparse/0."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatpack.captures.sfm import run_sfm


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images_dir", metavar="IMAGES_DIR", type=Path, help="folder of photos.")
    p.add_argument(
        "--out", type=Path, required=True, metavar="OUT", help="output folder; `splatpack train OUT` reads it."
    )
    p.add_argument(
        "--matching",
        choices=("exhaustive", "sequential"),
        default="exhaustive",
        help="exhaustive (small sets) or sequential (video frames).",
    )


def run(args: argparse.Namespace) -> None:
    stats = run_sfm(args.images_dir, args.out, matching=args.matching)
    print(", ".join(f"{k}: {v}" for k, v in stats.items()))
