"""The ``splatpack`` console script: imports the command line inside a guard, so that a Ctrl-C
while the heavy modules (torch, numba) load exits 130 with one line instead of a traceback.
``splatpack --version`` is answered here, before those modules load."""

from __future__ import annotations

import os
import signal
import sys
from importlib.metadata import PackageNotFoundError, version

import splatpack


def version_text() -> str:
    """``splatpack 0.1.0 (torch 2.13.0, numba 0.61.0)``, from the installed packages' metadata
    (without importing torch or numba)."""
    return f"splatpack {splatpack.__version__} ({', '.join(f'{n} {_installed(n)}' for n in ('torch', 'numba'))})"


def _installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def entrypoint() -> None:
    if sys.argv[1:] == ["--version"]:
        print(version_text())
        sys.exit(0)
    try:
        from splatpack.apps.cli import main

        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # the reader went away (`splatpack info … | head -1`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        code = 141  # 128 + SIGPIPE, as a shell reports it
    if code == 130:
        _exit_interrupted()
    sys.exit(code)


def _exit_interrupted() -> None:
    """Exit 130 at once. CPython remembers a KeyboardInterrupt that crossed C code running Python
    (``PyRun_*``) even when it was caught later, and then kills itself with SIGINT after
    finalising; a second Ctrl-C could also land during shutdown. The command has finished its
    outputs and cleanup by now, so the streams are flushed and the process ends here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)
