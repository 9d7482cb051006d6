"""The command-line parser: :mod:`argparse` whose errors are ours, one line each.

:class:`Parser` raises :class:`~splatpack.core.SplatpackError` instead of printing argparse's
usage and exiting, so a bad option reads like every other bad input: ``error: <message>`` and
exit status 2. Option values are checked where they are parsed (:func:`int_in`,
:func:`quality_level`). Option names are spelled with hyphens (``--viewer-port``); the
underscore spelling (``--viewer_port``) is accepted too.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import get_args

from splatpack.codecs.grid import QUALITY_LEVELS, QUALITY_NAMES
from splatpack.core import SplatpackError
from splatpack.core.limits import DEFAULT_MAX_GAUSSIANS
from splatpack.render.rasterize import Backend

__all__ = [
    "BACKENDS",
    "Parser",
    "add_follow_symlinks",
    "add_max_gaussians",
    "build_parser",
    "follow_output_link",
    "int_in",
    "parse_args",
    "quality_level",
]

BACKENDS: tuple[str, ...] = get_args(Backend)  # auto, cpu, cuda
QUALITY_CHOICES = ("sog", *QUALITY_NAMES)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help with its default, unless the default is None (the help says what then)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` that raises ``SplatpackError("<prog>: <message>")``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        raise SplatpackError(f"{self.prog}: {message}")


def int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """A value type: an integer ≥ ``lo`` (and ≤ ``hi``)."""
    expected = f"an integer ≥ {lo}" if hi is None else f"an integer in {lo}..{hi}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def quality_level(text: str) -> int | str:
    """``--quality``: 0 .. 10 (an int) or a level name of the grid codec (a str)."""
    if text in QUALITY_CHOICES:
        return text
    if text.lstrip("-").isdigit() and int(text) in QUALITY_LEVELS:
        return int(text)
    lo, hi = min(QUALITY_LEVELS), max(QUALITY_LEVELS)
    raise argparse.ArgumentTypeError(f"expected {lo}..{hi} or one of {', '.join(QUALITY_CHOICES)}, got {text!r}")


def add_max_gaussians(p: argparse.ArgumentParser) -> None:
    """``--max-gaussians N``, for a command that reads a scene (:mod:`splatpack.core.limits`)."""
    p.add_argument(
        "--max-gaussians",
        type=int_in(1),
        default=argparse.SUPPRESS,  # absent unless given: the ceiling in force stays
        metavar="N",
        help=f"refuse a scene of more than N Gaussians (default {DEFAULT_MAX_GAUSSIANS:,}); setting it also "
        "accepts, up to N, a file that claims more Gaussians than its size usually holds.",
    )


def add_follow_symlinks(p: argparse.ArgumentParser) -> None:
    """``--follow-symlinks``, for a command that writes ``-o OUT``: by default an ``OUT`` that is a
    symbolic link is refused (:mod:`splatpack.core.atomic`); with it, the file it points to is
    replaced."""
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="when OUT is a symbolic link, write the file it points to (refused otherwise).",
    )


def follow_output_link(args: argparse.Namespace) -> None:
    """With ``--follow-symlinks``, ``args.out`` becomes the path its link points to."""
    out = getattr(args, "out", None)
    if getattr(args, "follow_symlinks", False) and out is not None and Path(out).is_symlink():
        args.out = Path(os.path.realpath(out))


def build_parser(commands: Mapping[str, ModuleType], description: str) -> Parser:
    """The ``splatpack`` parser with one subcommand per entry of ``commands``: a module whose
    docstring is the command's help, with ``add_arguments(parser)`` and ``run(args)``."""
    parser = Parser(prog="splatpack", description=description)
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name, module in commands.items():
        doc = " ".join((module.__doc__ or "").split())
        command = sub.add_parser(name, help=doc, description=doc)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def _hyphenated(arg: str) -> str:
    """``--viewer_port=8`` → ``--viewer-port=8``; other arguments as they are."""
    if not arg.startswith("--"):
        return arg
    name, eq, value = arg.partition("=")
    return name.replace("_", "-") + eq + value


def parse_args(parser: Parser, argv: Sequence[str], commands: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed; an unknown command or option raises ``SplatpackError``."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in commands:
        raise SplatpackError(f"Unrecognized options: {first} (the commands are {', '.join(commands)})")
    args, unknown = parser.parse_known_args([_hyphenated(a) for a in argv])
    if unknown:
        raise SplatpackError(f"splatpack {args.command}: Unrecognized options: {' '.join(unknown)}")
    return args
