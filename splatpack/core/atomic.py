"""Atomic output: a file or folder is built aside as a hidden sibling, fsynced, then swapped in.

A crash mid-write leaves the old output (or none), never a half-written one that looks valid.

* :func:`atomic_write` (and ``atomic_write_bytes``/``_text``): a temporary ``.NAME.XXXXXXXX.tmp``
  next to ``NAME``, fsync, rename over ``NAME``.
* :func:`atomic_folder`: a hidden sibling folder ``.NAME.XXXXXXXX.tmp`` the caller fills; on
  success its files and itself are fsynced and it is exchanged with the old folder in one step
  (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere the old folder is renamed aside and the new
  one renamed in), then the old folder is removed.

What is replaced: nothing, a regular file (:func:`atomic_write`) or a folder (:func:`atomic_folder`).
Anything else at the target (a folder where a file is meant, a FIFO, a device, a socket) is
refused with a one-line :class:`~splatpack.core.SplatpackError` and left untouched. So is a
symbolic link, unless the caller passes ``follow_symlinks=True``: then the file or folder it
points to is replaced and the link kept. The permission bits (and, where the system allows,
owner and group) of the replaced output are kept; a new file gets ``0o666`` and a new folder
``0o777``, less the umask, as ``open`` and ``mkdir`` give them.

Temporaries are removed when the write fails; when SIGTERM arrives during the write (while one
is in progress, the main thread installs a handler where SIGTERM has its default action; it
removes the temporaries, then the process dies of SIGTERM as before); and, for those a SIGKILL
left behind, by the next write of the same name once they are older than :data:`STALE_SECONDS`
(only names of our own pattern, owned by this user).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from splatpack.core.errors import SplatpackError

__all__ = ["STALE_SECONDS", "atomic_folder", "atomic_write", "atomic_write_bytes", "atomic_write_text"]

#: a temporary of ours untouched this long is a leftover of a killed writer, swept by the next write
STALE_SECONDS = 300.0

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _target(path: Path, folder: bool, follow_symlinks: bool) -> tuple[Path, os.stat_result | None]:
    """The path to replace (a link's target when following links) and its stat, None when there
    is nothing there; refuses anything but a regular file (a folder when ``folder``)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path, None
    if stat.S_ISLNK(st.st_mode):
        if not follow_symlinks:
            raise SplatpackError("is a symbolic link; not replacing it (name the file it points to)", path)
        return _target(Path(os.path.realpath(path)), folder, follow_symlinks=False)
    if folder and not stat.S_ISDIR(st.st_mode):
        raise SplatpackError(f"is {_kind(st.st_mode)}, not a folder; not replacing it", path)
    if not folder and stat.S_ISDIR(st.st_mode):
        raise SplatpackError("is a folder; give a file name to write", path)
    if not folder and not stat.S_ISREG(st.st_mode):
        raise SplatpackError(f"is {_kind(st.st_mode)}, not a regular file; not replacing it", path)
    return path, st


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _lock:  # no way to read it without setting it elsewhere
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _keep_mode(target: int | str, old: os.stat_result | None, new_mode: int) -> None:
    """Give ``target`` (an fd or a path) the old output's permissions, or ``new_mode`` less the umask."""
    if old is None:
        os.chmod(target, new_mode & ~_umask())
        return
    with contextlib.suppress(OSError):  # only root, or a group of ours
        os.chown(target, old.st_uid, old.st_gid)
    os.chmod(target, stat.S_IMODE(old.st_mode))


def _fsync_dir(path: str | Path) -> None:
    with contextlib.suppress(OSError):  # not every system opens folders
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


# --------------------------------------------------------------------------- stale temporaries


def _newest_mtime(path: str, st: os.stat_result) -> float:
    newest = st.st_mtime
    if stat.S_ISDIR(st.st_mode):
        for e in os.scandir(path):
            newest = max(newest, e.stat(follow_symlinks=False).st_mtime)
    return newest


def _sweep(parent: Path, name: str) -> None:
    """Remove ``name``'s temporaries that a killed writer left in ``parent``: our pattern
    (``tempfile``'s eight characters), owned by this user, untouched for :data:`STALE_SECONDS`."""
    ours = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp")
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    now = time.time()
    with contextlib.suppress(OSError):
        for e in os.scandir(parent):
            if not ours.fullmatch(e.name):
                continue
            with contextlib.suppress(OSError):
                st = e.stat(follow_symlinks=False)
                if uid is not None and st.st_uid != uid:
                    continue
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                    continue
                if now - _newest_mtime(e.path, st) >= STALE_SECONDS:
                    _remove(e.path)


# --------------------------------------------------------------------------- SIGTERM


_lock = threading.Lock()
_live: set[str] = set()  # temporaries being written, removed by the SIGTERM handler
_depth = 0  # writes in progress in the main thread
_installed = False


def _on_sigterm(signum: int, frame: object) -> None:
    for tmp in list(_live):
        with contextlib.suppress(OSError):
            _remove(tmp)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)  # die of SIGTERM, as without the handler


@contextlib.contextmanager
def _removed_on_sigterm(tmp: str) -> Iterator[None]:
    """Register ``tmp`` for removal on SIGTERM while the block runs (the handler installed by the
    main thread, only where SIGTERM has its default action: a program's own handler is left alone)."""
    global _depth, _installed
    main = threading.current_thread() is threading.main_thread()
    _live.add(tmp)
    if main:
        if _depth == 0 and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            _installed = True
        _depth += 1
    try:
        yield
    finally:
        _live.discard(tmp)
        if main:
            _depth -= 1
            if _depth == 0 and _installed:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # runs a pending handler first
                _installed = False


# --------------------------------------------------------------------------- files


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", *, follow_symlinks: bool = False) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on clean exit rename it to ``path``.

    Refuses a ``path`` that is not a regular file (or absent); a symbolic link only with
    ``follow_symlinks``, then writing the file it points to (module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path, old = _target(path, folder=False, follow_symlinks=follow_symlinks)
    _sweep(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with _removed_on_sigterm(tmp):
        try:
            with os.fdopen(fd, mode) as f:
                yield f
                f.flush()
                _keep_mode(f.fileno(), old, 0o666)
                os.fsync(f.fileno())
            _target(path, folder=False, follow_symlinks=False)  # still nothing else there
            os.replace(tmp, path)
        except BaseException:
            _remove(tmp)
            raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes, *, follow_symlinks: bool = False) -> None:
    with atomic_write(path, "wb", follow_symlinks=follow_symlinks) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, *, follow_symlinks: bool = False) -> None:
    with atomic_write(path, "w", follow_symlinks=follow_symlinks) as f:
        f.write(text)


# --------------------------------------------------------------------------- folders

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: str, b: str) -> bool:
    """Swap the paths ``a`` and ``b`` in one step (Linux ``renameat2``); False where the system
    or file system lacks it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b)


def _fsync_tree(root: str) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(folder)


def _swap_in(tmp: str, path: Path, replacing: bool) -> None:
    """Put the folder ``tmp`` at ``path``; the old folder there (``replacing``) is removed."""
    if not replacing:
        os.rename(tmp, path)
    elif _exchange(tmp, str(path)):
        _remove(tmp)  # now the old folder
    else:
        aside = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.rename(path, aside)  # onto the empty folder
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(aside, path)
            raise
        _remove(aside)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_folder(
    path: str | Path, *, may_replace: Callable[[str], bool] | None = None, follow_symlinks: bool = False
) -> Iterator[Path]:
    """Yield a new empty hidden folder next to ``path`` to fill; on clean exit it replaces ``path``.

    An existing folder at ``path`` is replaced only when ``may_replace(name)`` holds for every
    entry in it (e.g. the file names the writer itself writes): a folder holding anything else
    is refused, so that no foreign file is deleted. Targets and modes: module docstring."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise SplatpackError("names no folder of its own to replace; give the folder's name", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path, old = _target(path, folder=True, follow_symlinks=follow_symlinks)
    if old is not None and may_replace is not None:
        foreign = sorted(n for n in os.listdir(path) if not may_replace(n))
        if foreign:
            raise SplatpackError(
                f"folder holds {foreign[0]!r}, which this export does not write; "
                "not replacing it (name a new or empty folder)",
                path,
            )
    _sweep(path.parent, path.name)
    tmp = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with _removed_on_sigterm(tmp):
        try:
            yield Path(tmp)
            _fsync_tree(tmp)
            _keep_mode(tmp, old, 0o777)
            _swap_in(tmp, path, replacing=old is not None)
        except BaseException:
            _remove(tmp)
            raise
