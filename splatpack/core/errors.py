"""User-facing errors.

Every problem caused by the user's input (a missing file, a corrupt header, an unsupported
camera model) is raised as :class:`SplatpackError` with a one-line message that names the
file and the problem. The CLI prints ``error: <message>`` on stderr and exits with status 2,
without a traceback (``--debug`` shows it).
"""

from __future__ import annotations

from pathlib import Path


class SplatpackError(Exception):
    """An error in the user's input or environment, reported as one line."""

    def __init__(self, message: str, path: str | Path | None = None):
        message = " ".join(str(message).split())  # always one line
        if path is not None:
            message = f"{path}: {message}"
        super().__init__(message)
        self.path = None if path is None else Path(path)


class CaptureError(SplatpackError):
    """A capture (images, poses, SfM model) cannot be read."""
