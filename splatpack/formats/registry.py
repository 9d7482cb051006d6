"""One entry point each way for every scene file: :func:`load_scene` and :func:`save_scene`.

==================  =====  =====  ==========================================================
format              read   write  detected by
==================  =====  =====  ==========================================================
``spk``             yes    yes    ``\\x89SPK`` magic (any scene codec; :mod:`~splatpack.formats.spk`)
``npz``             yes    yes    zip magic and the ``.npz`` extension (:mod:`~splatpack.formats.npz`)
``compressed-ply``  yes    no     ``ply`` magic with PlayCanvas's ``chunk`` + packed vertices
                                  (:mod:`~splatpack.formats.compressed_ply`)
``ply`` (INRIA)     yes    yes    ``ply`` magic without a ``chunk`` element (:mod:`~splatpack.formats.ply`)
``spz``             yes    yes    gzip magic or ``NGSP`` magic (:mod:`~splatpack.formats.spz`)
``sog``             yes    yes    zip magic, a folder holding ``meta.json``, or a ``.json`` file
                                  (:mod:`~splatpack.formats.sog`)
``splat``           yes    yes    ``.splat`` extension (no magic; :mod:`~splatpack.formats.splat`)
==================  =====  =====  ==========================================================

Reading asks each format's ``sniff`` in the order of :data:`FORMATS` (content before extension);
writing picks the format by name or, when none is given, by the extension. A new format is one
module defining a :class:`~splatpack.formats.base.SceneFormat` and one line in :data:`FORMATS`.
Every write is atomic (temporary file, fsync, rename); every reader raises
:class:`~splatpack.core.SplatpackError` on bad input.
"""

from __future__ import annotations

from pathlib import Path

from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.limits import gaussian_limit
from splatpack.core.validate import validate_gaussians
from splatpack.formats import compressed_ply, npz, ply, sog, spk, splat, spz
from splatpack.formats.base import SceneFormat

__all__ = ["FORMATS", "WRITE_FORMATS", "detect_format", "load_scene", "path_size", "save_scene", "scene_format"]

#: every format, in the order :func:`detect_format` asks them
FORMATS: tuple[SceneFormat, ...] = (
    spk.FORMAT,
    npz.FORMAT,
    compressed_ply.FORMAT,
    ply.FORMAT,
    spz.FORMAT,
    sog.FORMAT,
    splat.FORMAT,
)
#: names of the formats :func:`save_scene` writes
WRITE_FORMATS = tuple(f.name for f in FORMATS if f.write is not None)
HEAD_BYTES = 1 << 16  # what sniffing reads of a file (a PLY header's largest)


def scene_format(name: str) -> SceneFormat:
    """The format called ``name``."""
    for f in FORMATS:
        if f.name == name:
            return f
    raise SplatpackError(f"unknown format {name!r} (one of {', '.join(f.name for f in FORMATS)})")


def detect_format(path: str | Path) -> SceneFormat:
    """The format of the file or folder at ``path`` (by content, then by extension)."""
    path = Path(path)
    if path.is_dir():
        head = b""
    elif path.is_file():
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    else:
        raise SplatpackError("file does not exist", path)
    for f in FORMATS:
        if f.sniff(head, path):
            return f
    if path.is_dir():
        raise SplatpackError("folder holds no meta.json (not a SOG folder)", path)
    ext = path.suffix.lower()
    raise SplatpackError(f"unrecognised splat file (extension {ext or 'none'!r}, no known magic)", path)


def load_scene(path: str | Path, max_gaussians: int | None = None) -> GaussianSet:
    """Read any scene splatpack reads (``.spk`` of any scene codec, INRIA or compressed PLY,
    ``.splat``, SPZ, SOG) as a :class:`~splatpack.core.GaussianSet`.

    A file that claims more Gaussians than the ceiling (:mod:`splatpack.core.limits`; default
    :data:`~splatpack.core.limits.DEFAULT_MAX_GAUSSIANS`), or more than its bytes can hold, is
    refused before anything is decoded; ``max_gaussians`` sets the ceiling and vouches for any
    count up to it."""
    with gaussian_limit(max_gaussians):
        return detect_format(path).read(Path(path))


def save_scene(gs: GaussianSet, path: str | Path, format: str | None = None, **options) -> Path:
    """Write ``gs`` to ``path`` as ``format`` (one of :data:`WRITE_FORMATS`; from the extension
    when None); ``options`` go to the format's writer (e.g. ``quality`` for ``spk``). ``gs`` is
    checked first (:func:`~splatpack.core.validate.validate_gaussians`: shapes, SH degree 0..3,
    finite values, N > 0): nothing is written that splatpack would refuse to read."""
    path = Path(path)
    if format is None:
        fmt = next((f for f in FORMATS if f.write is not None and path.suffix.lower() in f.extensions), None)
    else:
        fmt = next((f for f in FORMATS if f.write is not None and f.name == format), None)
    if fmt is None:
        writable = ", ".join(f.name for f in FORMATS if f.write is not None)
        raise SplatpackError(f"cannot write format {format or path.suffix or 'none'!r} (one of {writable})", path)
    # the one check before any writer; SOG alone writes (and reads back) an empty scene
    validate_gaussians(gs, path, allow_empty=fmt.name == "sog")
    return fmt.write(gs, path, **options)


def path_size(path: str | Path) -> int:
    """Bytes of a file, or of every file under a folder (a SOG folder, a PNG-codec folder)."""
    p = Path(path)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
