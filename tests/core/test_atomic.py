"""Atomic output (:mod:`splatpack.core.atomic`): what a target may be, the modes kept, stale
temporaries swept, SIGTERM cleaned up, and a SOG folder export killed midway leaving the old
folder or the new one, whole."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from format_scenes import random_set

from splatpack.apps.cli import main
from splatpack.core import atomic
from splatpack.core.atomic import STALE_SECONDS, atomic_folder, atomic_write, atomic_write_bytes
from splatpack.core.errors import SplatpackError
from splatpack.formats import load_scene
from splatpack.formats.npz import save_npz
from splatpack.formats.ply import save_ply
from splatpack.formats.sog import save_sog

ROOT = Path(__file__).resolve().parents[2]


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --------------------------------------------------------------------------- modes


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_outputs_follow_the_umask(tmp_path, mask):
    with umask(mask):
        atomic_write_bytes(tmp_path / "f.bin", b"x")
        with atomic_folder(tmp_path / "d") as d:
            (d / "a.webp").write_bytes(b"y")
    assert mode(tmp_path / "f.bin") == 0o666 & ~mask
    assert mode(tmp_path / "d") == 0o777 & ~mask
    assert mode(tmp_path / "d" / "a.webp") == 0o666 & ~mask


@pytest.mark.parametrize("old_mode", [0o644, 0o600, 0o755, 0o440])
def test_overwriting_keeps_the_mode(tmp_path, old_mode):
    f = tmp_path / "f.ply"
    f.write_bytes(b"old")
    f.chmod(old_mode)
    with umask(0o077):
        atomic_write_bytes(f, b"new")
    assert f.read_bytes() == b"new" and mode(f) == old_mode
    d = tmp_path / "d"
    d.mkdir()
    d.chmod(0o751)
    with umask(0o077), atomic_folder(d) as new:
        (new / "meta.json").write_text("{}")
    assert mode(d) == 0o751 and (d / "meta.json").read_text() == "{}"


# --------------------------------------------------------------------------- targets


def test_fifo_socket_and_device_are_refused_untouched(tmp_path):
    fifo = tmp_path / "fifo.ply"
    os.mkfifo(fifo)
    with pytest.raises(SplatpackError, match=r"fifo\.ply: is a FIFO, not a regular file; not replacing it"):
        atomic_write_bytes(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    sock_path = tmp_path / "s.ply"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        with pytest.raises(SplatpackError, match="is a socket"):
            atomic_write_bytes(sock_path, b"x")
    assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
    # /dev/null itself is only looked at (this may run as root, where replacing it would succeed)
    with pytest.raises(SplatpackError, match="/dev/null: is a character device"):
        atomic._target(Path("/dev/null"), folder=False, follow_symlinks=False)
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:
        return  # no CAP_MKNOD here: the FIFO and socket cases stand for it
    with pytest.raises(SplatpackError, match="is a character device"):
        atomic_write_bytes(dev, b"x")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    assert temporaries(tmp_path) == []


def test_symlinks_are_refused_unless_followed(tmp_path):
    """A symbolic link is refused (the link and its file left as they are); with
    ``follow_symlinks=True`` the file it points to is replaced and the link kept."""
    real = tmp_path / "real.ply"
    real.write_bytes(b"old")
    link = tmp_path / "link.ply"
    link.symlink_to(real)
    with pytest.raises(SplatpackError, match="is a symbolic link; not replacing it"):
        atomic_write_bytes(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"old"
    dangling = tmp_path / "dangling.ply"
    dangling.symlink_to(tmp_path / "nowhere.ply")
    with pytest.raises(SplatpackError, match="symbolic link"):
        atomic_write_bytes(dangling, b"new")
    assert not (tmp_path / "nowhere.ply").exists()
    atomic_write_bytes(link, b"new", follow_symlinks=True)
    assert link.is_symlink() and real.read_bytes() == b"new"
    folder_link = tmp_path / "out"
    folder_link.symlink_to(tmp_path / "real_folder", target_is_directory=True)
    with pytest.raises(SplatpackError, match="symbolic link"), atomic_folder(folder_link):
        pass
    assert folder_link.is_symlink() and temporaries(tmp_path) == []


def test_folder_and_file_in_each_others_place(tmp_path):
    (tmp_path / "out.ply").mkdir()
    with pytest.raises(SplatpackError, match=r"out\.ply: is a folder; give a file name"):
        atomic_write_bytes(tmp_path / "out.ply", b"x")
    (tmp_path / "file").write_bytes(b"keep")
    with pytest.raises(SplatpackError, match="is a regular file, not a folder"), atomic_folder(tmp_path / "file"):
        pass
    assert (tmp_path / "file").read_bytes() == b"keep" and temporaries(tmp_path) == []
    for name in (".", "..", tmp_path / "sub" / ".."):
        with pytest.raises(SplatpackError, match="names no folder of its own"), atomic_folder(name):
            pass


def test_a_folder_with_foreign_files_is_not_replaced(tmp_path):
    d = tmp_path / "export"
    d.mkdir()
    (d / "meta.json").write_text("{}")
    (d / "notes.txt").write_text("mine")
    with pytest.raises(SplatpackError, match=r"folder holds 'notes\.txt', which this export does not write"):
        save_sog(random_set(20), d)
    assert sorted(p.name for p in d.iterdir()) == ["meta.json", "notes.txt"] and temporaries(tmp_path) == []


def test_cli_refuses_special_targets_with_one_line(tmp_path, capsys):
    src = tmp_path / "in.ply"
    save_ply(random_set(20), src)
    os.mkfifo(tmp_path / "fifo.ply")
    (tmp_path / "dir.ply").mkdir()
    (tmp_path / "link.ply").symlink_to(src)
    for name, problem in [("fifo.ply", "is a FIFO"), ("dir.ply", "is a folder"), ("link.ply", "is a symbolic link")]:
        assert main(["export", str(src), "-o", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path / name}: {problem}"), err
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo.ply").st_mode) and (tmp_path / "dir.ply").is_dir()
    assert (tmp_path / "link.ply").is_symlink() and load_scene(src).means.shape == (20, 3)


# --------------------------------------------------------------------------- temporaries


def test_stale_temporaries_of_our_own_are_swept(tmp_path):
    old = time.time() - STALE_SECONDS - 60
    stale_file = tmp_path / ".out.ply.abcd_123.tmp"
    stale_dir = tmp_path / ".out.ply.zzzz9999.tmp"
    fresh = tmp_path / ".out.ply.fresh000.tmp"
    not_ours = [tmp_path / ".out.ply.keep.tmp", tmp_path / ".other.ply.abcd1234.tmp", tmp_path / "out.ply.abcd1234.tmp"]
    for p in [stale_file, fresh, *not_ours]:
        p.write_bytes(b"x")
    stale_dir.mkdir()
    (stale_dir / "a.webp").write_bytes(b"x")
    for p in [stale_file, stale_dir / "a.webp", stale_dir, *not_ours]:
        os.utime(p, (old, old))
    atomic_write_bytes(tmp_path / "out.ply", b"new")
    assert not stale_file.exists() and not stale_dir.exists()
    assert fresh.exists() and all(p.exists() for p in not_ours)


def test_a_failed_write_leaves_no_temporary_and_sigterm_handler_is_restored(tmp_path):
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "f.bin") as f:
        f.write(b"partial")
        raise RuntimeError
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "d") as d:
        (d / "a.webp").write_bytes(b"x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_folder_swap_without_renameat2(tmp_path, monkeypatch):
    """Where the system cannot exchange two paths, the old folder is renamed aside, then the new one in."""
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    d = tmp_path / "d"
    for text in ("one", "two"):
        with atomic_folder(d) as new:
            (new / "meta.json").write_text(text)
    assert (d / "meta.json").read_text() == "two" and temporaries(tmp_path) == []


# --------------------------------------------------------------------------- killed midway

CHILD = textwrap.dedent(
    """
    import os, pathlib, sys, time
    import splatpack.core.atomic as atomic
    from splatpack.formats import load_scene
    from splatpack.formats.sog import save_sog

    point, src, out = sys.argv[1:4]

    def pause():
        print("paused", flush=True)
        time.sleep(120)

    def after(n, f):
        calls = [0]
        def wrapped(*a, **k):
            r = f(*a, **k)
            calls[0] += 1
            if calls[0] == n:
                pause()
            return r
        return wrapped

    def before(f):
        def wrapped(*a, **k):
            pause()
            return f(*a, **k)
        return wrapped

    gs = load_scene(src)
    if point == "write":  # two images written into the hidden folder
        pathlib.Path.write_bytes = after(2, pathlib.Path.write_bytes)
    elif point == "fsync":  # every file written, being made durable
        os.fsync = before(os.fsync)
    elif point == "swap":  # about to exchange the folders
        atomic._exchange = before(atomic._exchange)
    elif point == "remove":  # exchanged, the old folder not yet removed
        atomic._remove = before(atomic._remove)
    save_sog(gs, out)
    print("done", flush=True)
    """
)


def run_paused(point: str, src: Path, out: Path, sig: int) -> int:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, point, str(src), str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stdout.readline()
        assert line == "paused\n", (line, p.stderr.read())
        p.send_signal(sig)
        return p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def two_exports(tmp_path_factory):
    """An old and a new scene (different counts and positions), and their SOG folders."""
    root = tmp_path_factory.mktemp("sog_kill")
    old, new = random_set(40, seed=1, pos_scale=0.5), random_set(55, degree=1, seed=2, pos_scale=0.5)
    save_npz(new, root / "new.npz")
    return root, save_sog(old, root / "ref_old"), save_sog(new, root / "ref_new")


@pytest.mark.parametrize(
    ("point", "sig", "expect"),
    [
        ("write", signal.SIGKILL, "old"),
        ("fsync", signal.SIGKILL, "old"),
        ("swap", signal.SIGKILL, "old"),
        ("remove", signal.SIGKILL, "new"),
        ("write", signal.SIGTERM, "old"),
    ],
)
def test_sog_folder_export_killed_midway_leaves_one_whole_export(two_exports, tmp_path, point, sig, expect):
    root, ref_old, ref_new = two_exports
    out = tmp_path / "export"
    shutil.copytree(ref_old, out)
    rc = run_paused(point, root / "new.npz", out, sig)
    assert rc == -sig
    assert files(out) == files(ref_new if expect == "new" else ref_old)
    assert len(load_scene(out)) == (55 if expect == "new" else 40)
    left = temporaries(tmp_path)
    if sig == signal.SIGTERM:
        assert left == []  # removed by the handler before dying
        return
    # SIGKILL leaves the hidden folder; the next export sweeps it once stale
    assert len(left) == 1, left
    stale = time.time() - STALE_SECONDS - 60
    for p in (tmp_path / left[0]).rglob("*"):
        os.utime(p, (stale, stale))
    os.utime(tmp_path / left[0], (stale, stale))
    save_sog(load_scene(root / "new.npz"), out)
    assert files(out) == files(ref_new) and temporaries(tmp_path) == []


def test_sigterm_during_a_file_write_removes_the_temporary(tmp_path):
    target = tmp_path / "big.ply"
    target.write_bytes(b"old")
    child = textwrap.dedent(
        """
        import sys, time
        from splatpack.core.atomic import atomic_write
        with atomic_write(sys.argv[1]) as f:
            f.write(bytes(1 << 20))
            f.flush()
            print("paused", flush=True)
            time.sleep(120)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", child, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "paused\n"
        assert len(temporaries(tmp_path)) == 1
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == -signal.SIGTERM
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert temporaries(tmp_path) == [] and target.read_bytes() == b"old"
