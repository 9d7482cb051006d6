"""Decode a compact .spk into a standard INRIA PLY (colour field baked into degree-3 SH)."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatpack.apps.inspect import decompress, format_export
from splatpack.apps.parser import add_follow_symlinks, add_max_gaussians, require_extension


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        metavar="FILE",
        type=Path,
        help="a .spk file written by `splatpack train --config configs/compact.yaml`.",
    )
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="the PLY to write.")

    add_max_gaussians(p)
    add_follow_symlinks(p)


def run(args: argparse.Namespace) -> None:
    require_extension(
        args.out,
        (".ply",),
        f"decompress writes an INRIA PLY: name it {args.out.with_suffix('.ply')} "
        "(`splatpack export --format` writes .splat, .spz and .sog)",
    )
    print(format_export(decompress(args.file, args.out)))
