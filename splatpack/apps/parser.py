"""The command-line parser: :mod:`argparse` whose errors are ours, one line each.

:class:`Parser` raises :class:`~splatpack.core.SplatpackError` instead of printing argparse's
usage and exiting, so a bad option reads like every other bad input: ``error: <message>`` and
exit status 2, with a "did you mean" for a mistyped command or option. Option values are
checked where they are parsed (:func:`int_in`, :func:`quality_level`), output names where a
command starts (:func:`require_extension`). Option names are spelled with hyphens
(``--viewer-port``); the underscore spelling (``--viewer_port``) is accepted too. Each command's
help ends with examples (``build_parser``'s ``examples``).
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import get_args

from splatpack.apps.launch import version_text
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
    "byte_size",
    "float_in",
    "follow_output_link",
    "int_in",
    "parse_args",
    "quality_level",
    "require_extension",
    "subcommands",
]

BACKENDS: tuple[str, ...] = get_args(Backend)  # auto, cpu, cuda
#: byte-size suffixes (case-insensitive, an optional trailing B): k, M, G decimal; Ki, Mi, Gi binary
SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30}
SIZE_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(|k|m|g|ki|mi|gi)b?", re.IGNORECASE)
QUALITY_CHOICES = ("sog", *QUALITY_NAMES)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help with its default, unless the default is None (the help says what then)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        """Paragraphs are filled; an indented line (an example command) is kept as written."""
        return "\n".join(
            indent + line if line.startswith(" ") else super(HelpFormatter, self)._fill_text(line, width, indent)
            for line in text.splitlines()
        )


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


def float_in(lo: float, hi: float | None = None) -> Callable[[str], float]:
    """A value type: a finite number > ``lo`` (and ≤ ``hi``)."""
    expected = f"a number > {lo:g}" if hi is None else f"a number in ({lo:g}, {hi:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def byte_size(text: str) -> int:
    """A value type: a size in bytes, ``1500000``, ``500k``, ``2MB``, ``1.5M`` (decimal units) or
    ``512KiB``, ``2MiB`` (binary), at least 1 byte."""
    m = SIZE_RE.fullmatch(text.strip())
    value = round(float(m[1]) * SIZE_UNITS[m[2].lower()]) if m else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a size in bytes such as 1500000, 500k or 2MB, got {text!r}")
    return value


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


def build_parser(
    commands: Mapping[str, ModuleType],
    description: str,
    examples: Mapping[str, Sequence[str]] | None = None,
    epilog: str | None = None,
) -> Parser:
    """The ``splatpack`` parser with one subcommand per entry of ``commands``: a module whose
    docstring is the command's help, with ``add_arguments(parser)`` and ``run(args)``.
    ``examples[name]`` are command lines (a ``# comment`` may follow) listed under the command's
    help; ``epilog`` ends the top-level help."""
    parser = Parser(prog="splatpack", description=description, epilog=epilog)
    parser.add_argument("--version", action="version", version=version_text(), help="print the versions and exit.")
    parser.add_argument(  # cli.main takes it out of the command line before parsing; listed for the help
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error instead of its one line (anywhere on the command line).",
    )
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name, module in commands.items():
        doc = " ".join((module.__doc__ or "").split())
        lines = (examples or {}).get(name, ())
        example_text = "examples:\n" + "\n".join(f"  {line}" for line in lines) if lines else None
        command = sub.add_parser(name, help=doc, description=doc, epilog=example_text)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Command name → its parser."""
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings]


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'train'?)`` for the choice closest to ``word``, or ``""``."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _hyphenated(arg: str) -> str:
    """``--viewer_port=8`` → ``--viewer-port=8``; other arguments as they are."""
    if not arg.startswith("--"):
        return arg
    name, eq, value = arg.partition("=")
    return name.replace("_", "-") + eq + value


def _refuse_unknown(parser: argparse.ArgumentParser, unknown: Sequence[str]) -> None:
    """One line for arguments ``parser`` does not know: the first unknown option with the closest
    known one, else the first stray argument."""
    option = next((a.partition("=")[0] for a in unknown if a.startswith("-") and a != "-"), None)
    if option is not None:
        hint = _did_you_mean(option, _options(parser)) or f" (see {parser.prog} --help)"
        raise SplatpackError(f"{parser.prog}: unknown option {option!r}{hint}")
    raise SplatpackError(f"{parser.prog}: unexpected argument {unknown[0]!r} (see {parser.prog} --help)")


def parse_args(parser: Parser, argv: Sequence[str], commands: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed; an unknown command or option raises ``SplatpackError`` (with the closest
    known name when one is close)."""
    argv = [_hyphenated(a) for a in argv]
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    leading = [a for a in argv[:first] if a not in _options(parser)]
    if leading:
        _refuse_unknown(parser, leading)
    if first < len(argv) and argv[first] not in commands:
        word = argv[first]
        hint = _did_you_mean(word, commands) or f" (the commands are {', '.join(commands)})"
        raise SplatpackError(f"unknown command {word!r}{hint}")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _refuse_unknown(subcommands(parser)[args.command], unknown)
    return args


def require_extension(out: Path, extensions: Sequence[str], advice: str) -> None:
    """Refuse an output name that does not end in one of ``extensions`` before any work is done:
    ``<out>: <what is wrong>: <advice>``."""
    suffix = Path(out).suffix.lower()
    if suffix in extensions:
        return
    problem = "no extension" if not suffix else f"unexpected extension {suffix!r}"
    raise SplatpackError(f"{problem}: {advice}", out)
