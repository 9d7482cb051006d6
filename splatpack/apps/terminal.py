"""Waiting at the terminal: commands that serve something (``view``, ``train --viewer``) until Ctrl-C."""

from __future__ import annotations

import signal
import time

__all__ = ["wait_for_ctrl_c"]


def wait_for_ctrl_c() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM. Both handlers are installed here: a process a
    non-interactive shell starts in the background inherits SIGINT *ignored*, and Python then
    never raises KeyboardInterrupt."""
    old = {sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
