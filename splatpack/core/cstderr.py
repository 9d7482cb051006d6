"""C libraries that print to the process's stderr (libpng's ``PNG warning: …``) break the rule
that a failing command prints exactly one line. :func:`c_stderr_captured` points file
descriptor 2 at a temporary file around such a call and hands back what was printed there.

Why not ``contextlib.redirect_stderr``: it swaps Python's ``sys.stderr`` object, which C code
never sees. While the descriptor is redirected, anything other threads write to stderr lands in
the capture too; keep the wrapped call short (one image decode).
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["c_stderr_captured"]


def _flush_c_streams() -> None:
    """``fflush(NULL)``: write out every C stdio buffer (libpng's warnings wait in one)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextmanager
def c_stderr_captured() -> Iterator[list[str]]:
    """Capture what is written to file descriptor 2 inside the block; the yielded list holds
    the captured lines once the block ends."""
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (some embedded interpreters): nothing to capture
        yield lines
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            _flush_c_streams()  # C's stderr may be buffered: its text must land in the capture
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", "replace").splitlines())
