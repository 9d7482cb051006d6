"""Write a scene (.spk, or any splat file: PLY, compressed PLY, .splat, SPZ, SOG) in a format
other tools read."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatpack.apps.inspect import export, format_export
from splatpack.apps.parser import add_follow_symlinks, add_max_gaussians, require_extension
from splatpack.core import SplatpackError
from splatpack.formats import FORMATS, scene_format

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


def check_output_name(out: Path, format: str | None) -> None:
    """Without ``--format``, OUT's extension must name a format (nothing is written under a name
    that hides what it holds); with it, OUT may have no extension (a SOG folder) but not another
    format's."""
    if format is None:
        writable = [e for f in FORMATS if f.write is not None for e in f.extensions]
        shown = ", ".join(e for name in EXPORT_FORMATS for e in scene_format(name).extensions[:1])
        require_extension(out, writable, f"name it {shown}, or pass --format {'|'.join(EXPORT_FORMATS)}")
        return
    suffix = out.suffix.lower()
    other = next((f.name for f in FORMATS if suffix in f.extensions and f.name != format), None)
    if suffix and other is not None and suffix not in scene_format(format).extensions:
        raise SplatpackError(f"a {suffix} name for --format {format}: name it {out.with_suffix('')}.{format}", out)


def run(args: argparse.Namespace) -> None:
    check_output_name(args.out, args.format)
    print(format_export(export(args.file, args.out, args.format)))
