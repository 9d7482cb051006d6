"""Describe a scene file: format, Gaussian count, SH degree, bounding box, bytes per Gaussian;
for a .spk, its sections, their sizes and the ratio to the equivalent PLY."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from splatpack.apps.inspect import format_scene_info, scene_info
from splatpack.apps.parser import add_max_gaussians


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        metavar="FILE",
        type=Path,
        help="a .spk, INRIA .ply, PlayCanvas .compressed.ply, .splat, .spz, SOG (.sog or folder) or .npz.",
    )
    p.add_argument(
        "--json",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="print a JSON object (num_gaussians, total_bytes, bytes_per_gaussian; sh_degree and bbox_min/max, "
        "or a .spk's sections, …).",
    )

    add_max_gaussians(p)


def run(args: argparse.Namespace) -> None:
    d = scene_info(args.file)
    print(json.dumps(d, indent=2) if args.json else format_scene_info(d))
