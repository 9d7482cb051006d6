"""Ctrl-C during training as a request to stop, not an exception in the middle of a kernel.

While :class:`StopRequest` is active (the trainer's loop and its final evaluation), the first
SIGINT only sets :attr:`StopRequest.requested`; the loop checks it between steps, writes a
checkpoint and raises :class:`TrainingInterrupted`, which the command line turns into a line
saying how to resume (exit 130). A second SIGINT raises ``KeyboardInterrupt`` at once, for a
user who does not want to wait for the step to end. Python runs signal handlers between
bytecodes, so the flag is set after a compiled kernel returns: a ``KeyboardInterrupt`` raised
inside one used to surface as numba's ``SystemError``.

Outside it (:func:`noticed_interrupts`, around a whole command) SIGINT raises
``KeyboardInterrupt`` as Python's default handler does, and is also remembered until the command
line handles it: a library that swallows the exception (raised inside a finaliser, say, where
Python only prints "Exception ignored") cannot make a Ctrl-C during setup vanish, because the
next :class:`StopRequest` starts with the request already made and the loop stops at its first step.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from splatpack.core.errors import SplatpackError

__all__ = ["StopRequest", "TrainingInterrupted", "noticed_interrupts"]

_pending = False  # a Ctrl-C raised as KeyboardInterrupt that the command line has not handled yet


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
        global _pending
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            if _pending:  # an earlier Ctrl-C's KeyboardInterrupt was swallowed on its way out
                _pending = False
                self._handle(signal.SIGINT, None)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def noticed_interrupts() -> Iterator[None]:
    """A context (a command's whole run) in which SIGINT raises ``KeyboardInterrupt`` and is
    remembered until the context ends (main thread, where SIGINT has Python's default handler;
    elsewhere inert)."""
    global _pending
    _pending = False
    installed = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if installed:
        signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        _pending = False
