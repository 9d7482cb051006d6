"""A line printed only when work turns out slow: ``with notice_if_slow(say, "compiling…"):``
says the message once ``after`` seconds have passed inside the block, and nothing when the block
ends first (a warm cache, a small file), so fast runs stay quiet and slow ones never look hung."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["notice_if_slow"]


@contextmanager
def notice_if_slow(say: Callable[[str], object], message: str, after: float = 2.0) -> Iterator[None]:
    timer = threading.Timer(after, say, args=(message,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
