"""The ``splatpack`` console script: imports the command line inside a guard, so that a Ctrl-C
while the heavy modules (torch, numba) load exits 130 with one line instead of a traceback."""

from __future__ import annotations

import signal
import sys


def entrypoint() -> None:
    try:
        from splatpack.apps.cli import main

        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    if code == 130:  # interrupted: a Ctrl-C still pending must not kill the interpreter's shutdown
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
