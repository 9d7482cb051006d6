"""Show a .spk file's sections, their sizes and the ratio to the equivalent PLY."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from splatpack.apps.inspect import format_info, spk_info
from splatpack.apps.parser import add_max_gaussians


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", type=Path, help="a .spk file.")
    p.add_argument(
        "--json",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="print a JSON object (num_gaussians, total_bytes, ply_equivalent_bytes, sections, …).",
    )

    add_max_gaussians(p)


def run(args: argparse.Namespace) -> None:
    d = spk_info(args.file)
    print(json.dumps(d, indent=2) if args.json else format_info(d))
