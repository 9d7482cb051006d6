"""One entry point for every splat file format: :func:`load_splats` and :func:`save_splats`.

==================  =====  =====  ==========================================================
format              read   write  detected by
==================  =====  =====  ==========================================================
``ply`` (INRIA)     yes    yes    ``ply`` magic without a ``chunk`` element (:mod:`~splatpack.io.ply`)
``compressed-ply``  yes    no     ``ply`` magic with PlayCanvas's ``chunk`` + packed vertices
                                  (:mod:`~splatpack.io.compressed_ply`)
``splat``           yes    yes    ``.splat`` extension (no magic; :mod:`~splatpack.io.splat`)
``spz``             yes    yes    gzip magic or ``NGSP`` magic (:mod:`~splatpack.io.spz`)
``sog``             yes    yes    zip magic, a folder holding ``meta.json``, or a ``.json`` file
                                  (:mod:`~splatpack.io.sog`)
==================  =====  =====  ==========================================================

Content (magic bytes) wins over the extension when reading; writing picks the format from
``format`` or, when it is None, from the extension (``.ply``, ``.splat``, ``.spz``, ``.sog``).
Every write is atomic (temporary file, fsync, rename); every reader raises
:class:`~splatpack.errors.SplatpackError` on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from splatpack.errors import SplatpackError
from splatpack.model import GaussianSet

ReadFormat = Literal["ply", "compressed-ply", "splat", "spz", "sog"]
WriteFormat = Literal["ply", "splat", "spz", "sog"]
WRITE_FORMATS = ("ply", "splat", "spz", "sog")
EXTENSIONS = {".ply": "ply", ".splat": "splat", ".spz": "spz", ".sog": "sog", ".json": "sog"}


def detect_format(path: str | Path) -> ReadFormat:
    """The format of the file or folder at ``path`` (by magic bytes, then by extension)."""
    from splatpack.io.compressed_ply import MAX_HEADER, is_compressed_ply, parse_ply_header

    path = Path(path)
    if path.is_dir():
        if (path / "meta.json").is_file():
            return "sog"
        raise SplatpackError("folder holds no meta.json (not a SOG folder)", path)
    if not path.is_file():
        raise SplatpackError("file does not exist", path)
    with open(path, "rb") as f:
        head = f.read(MAX_HEADER)
    if head.startswith(b"ply"):
        try:
            _, elements = parse_ply_header(head, path)
        except SplatpackError:
            return "ply"  # let the INRIA reader report what is wrong
        return "compressed-ply" if is_compressed_ply(elements) else "ply"
    if head[:4] == b"NGSP" or head[:2] == b"\x1f\x8b":
        return "spz"
    if head[:4] == b"PK\x03\x04":
        return "sog"
    ext = path.suffix.lower()
    if ext in (".splat", ".json"):
        return EXTENSIONS[ext]  # type: ignore[return-value]
    raise SplatpackError(f"unrecognised splat file (extension {ext or 'none'!r}, no known magic)", path)


def load_splats(path: str | Path) -> GaussianSet:
    """Read any supported splat file (INRIA/compressed PLY, .splat, .spz, SOG) as a :class:`GaussianSet`."""
    fmt = detect_format(path)
    if fmt == "ply":
        from splatpack.io.ply import load_ply

        return load_ply(path)
    if fmt == "compressed-ply":
        from splatpack.io.compressed_ply import load_compressed_ply

        return load_compressed_ply(path)
    if fmt == "splat":
        from splatpack.io.splat import load_splat

        return load_splat(path)
    if fmt == "spz":
        from splatpack.io.spz import load_spz

        return load_spz(path)
    from splatpack.io.sog import load_sog

    return load_sog(path)


def save_splats(gs: GaussianSet, path: str | Path, format: WriteFormat | None = None) -> Path:
    """Write ``gs`` as ``format`` (``ply``, ``splat``, ``spz`` or ``sog``; from the extension when None)."""
    path = Path(path)
    fmt = format or EXTENSIONS.get(path.suffix.lower())
    if fmt not in WRITE_FORMATS:
        raise SplatpackError(f"cannot write format {format or path.suffix or 'none'!r} (one of {', '.join(WRITE_FORMATS)})", path)
    if fmt == "ply":
        from splatpack.io.ply import save_ply

        return save_ply(gs, path)
    if fmt == "splat":
        from splatpack.io.splat import save_splat

        return save_splat(gs, path)
    if fmt == "spz":
        from splatpack.io.spz import save_spz

        return save_spz(gs, path)
    from splatpack.io.sog import save_sog

    return save_sog(gs, path)


def path_size(path: str | Path) -> int:
    """Bytes of a file, or of every file under a folder (a SOG folder, a PNG-codec folder)."""
    p = Path(path)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
