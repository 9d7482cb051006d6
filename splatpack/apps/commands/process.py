"""Structure-from-motion with pycolmap on the CPU: photos → COLMAP model in OUT/sparse/0; with
--poses FILE, points triangulated with those known poses held fixed."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatpack.apps.parser import int_in
from splatpack.captures.downscale import DownscaleConfig
from splatpack.captures.sfm import run_sfm
from splatpack.captures.triangulate import TriangulationConfig, triangulate_known_poses


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
    p.add_argument(
        "--poses",
        type=Path,
        metavar="FILE",
        help="known cameras: LLFF poses_bounds.npy, a nerfstudio or Blender transforms.json, or a COLMAP model "
        "folder (sparse/0); photos pair with poses by name (LLFF: in name order). Points are triangulated with "
        "these poses and intrinsics held fixed instead of reconstructing the cameras.",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--downscale",
        type=int_in(1),
        metavar="K",
        help="match photos at 1/K size, written to OUT/images_K (the model describes those).",
    )
    size.add_argument(
        "--max-size",
        type=int_in(1),
        metavar="N",
        help="like --downscale, with the smallest K that brings every photo's longest side to N pixels or less.",
    )


def run(args: argparse.Namespace) -> None:
    downscale = DownscaleConfig(factor=args.downscale, max_size=args.max_size)
    if args.poses is None:
        stats = run_sfm(args.images_dir, args.out, matching=args.matching, downscale=downscale)
    else:
        config = TriangulationConfig(matching=args.matching, downscale=downscale)
        stats = triangulate_known_poses(args.images_dir, args.poses, args.out, config)
    print(", ".join(f"{k}: {v}" for k, v in stats.items()))
