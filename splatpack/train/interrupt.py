"""Ctrl-C during training as a request to stop, not an exception in the middle of a kernel.

While :class:`StopRequest` is active (the trainer's loop and its final evaluation), the first
SIGINT only sets :attr:`StopRequest.requested`; the loop checks it between steps, writes a
checkpoint and raises :class:`TrainingInterrupted`, which the command line turns into a line
saying how to resume (exit 130). A second SIGINT raises ``KeyboardInterrupt`` at once, for a
user who does not want to wait for the step to end. Python runs signal handlers between
bytecodes, so the flag is set after a compiled kernel returns: a ``KeyboardInterrupt`` raised
inside one used to surface as numba's ``SystemError``.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from splatpack.core.errors import SplatpackError

__all__ = ["StopRequest", "TrainingInterrupted"]


class TrainingInterrupted(SplatpackError):
    """Training stopped on request after ``step`` steps, with its checkpoint written."""

    def __init__(self, step: int, steps: int, checkpoint: Path):
        super().__init__(f"interrupted at step {step} of {steps}; checkpoint written", checkpoint)
        self.step, self.steps, self.checkpoint = step, steps, checkpoint


class StopRequest:
    """A context in which SIGINT sets :attr:`requested` (main thread only; elsewhere inert)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # the second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True
        print("stopping after this step to write a checkpoint (Ctrl-C again to stop at once)", file=sys.stderr)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
