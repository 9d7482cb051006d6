"""The ``splatpack`` command line: parse (:mod:`splatpack.apps.parser`), run the command
(:mod:`splatpack.apps.commands`), print.

Errors in the user's input are printed as one line, ``error: …``, with exit status 2;
``--debug`` (anywhere on the command line) shows the traceback instead. Ctrl-C exits with 130.
"""

from __future__ import annotations

import sys

from splatpack.apps.commands import COMMANDS
from splatpack.apps.parser import build_parser, parse_args
from splatpack.core import SplatpackError
from splatpack.core.limits import gaussian_limit

__all__ = ["entrypoint", "main"]

DESCRIPTION = "Train, compress, export and view compact 3D Gaussian Splatting scenes."


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        args = parse_args(build_parser(COMMANDS, DESCRIPTION), argv, list(COMMANDS))
        with gaussian_limit(getattr(args, "max_gaussians", None)):
            args.run(args)
    except SplatpackError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # argparse exits 0 after printing --help
        if e.code:
            raise
    return 0


def entrypoint() -> None:
    sys.exit(main())
