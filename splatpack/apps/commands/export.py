"""Write a scene (.spk, or any splat file: PLY, compressed PLY, .splat, SPZ, SOG) in a format
other tools read."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatpack.apps.inspect import export, format_export
from splatpack.apps.parser import add_follow_symlinks, add_max_gaussians

EXPORT_FORMATS = ("ply", "splat", "spz", "sog")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", type=Path, help="the scene to export.")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        metavar="OUT",
        help="the file to write (a .sog zip, or a folder for SOG without the extension).",
    )
    p.add_argument(
        "--format", choices=EXPORT_FORMATS, help="ply | splat | spz | sog (default: from the extension of OUT)."
    )

    add_max_gaussians(p)
    add_follow_symlinks(p)


def run(args: argparse.Namespace) -> None:
    print(format_export(export(args.file, args.out, args.format)))
