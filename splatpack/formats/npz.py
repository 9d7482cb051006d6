"""NumPy ``.npz``: the Gaussians' parameters as named float32 arrays, for scripts and debugging.

Arrays ``means`` [N, 3], ``quats`` [N, 4] (wxyz), ``scales`` [N, 3] (log), ``opacities`` [N]
(logit), ``sh0`` [N, 1, 3] and ``shN`` [N, K, 3] — the fields of :class:`~splatpack.core.GaussianSet`,
unactivated, as ``np.savez(path, **fields)`` writes them. Reading never unpickles (object arrays are
refused) and checks each array's header (dtype, shape, size against the zip's stored bytes)
before decompressing it.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.atomic import atomic_write
from splatpack.core.limits import check_gaussians
from splatpack.formats.base import SceneFormat

__all__ = ["FORMAT", "load_npz", "save_npz"]

FIELDS = ("means", "quats", "scales", "opacities", "sh0", "shN")
DEFLATE_MAX_RATIO = 1032  # the most a deflate stream expands


def save_npz(gs: GaussianSet, path: str | Path) -> Path:
    """Write ``gs``'s parameters as an uncompressed ``.npz`` (atomically)."""
    arrays = {k: getattr(gs, k).detach().cpu().float().numpy() for k in FIELDS}
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def _array(z: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    try:
        info = z.getinfo(f"{name}.npy")
    except KeyError:
        raise SplatpackError(f"no array '{name}'", path) from None
    with z.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
        except Exception as e:  # numpy parses the header dict with tokenize/ast: any error is a bad header
            raise SplatpackError(f"array '{name}' has a bad header ({type(e).__name__})", path) from None
        if dtype.hasobject or dtype.kind != "f":
            raise SplatpackError(f"array '{name}' is {dtype}, not floating point", path)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes > max(info.compress_size, 1) * DEFLATE_MAX_RATIO or nbytes > info.file_size:
            raise SplatpackError(f"array '{name}' claims {nbytes} bytes, more than the file holds", path)
        if shape:
            check_gaussians(int(shape[0]), path)
        raw = f.read(nbytes)
        if len(raw) < nbytes:
            raise SplatpackError(f"array '{name}' is truncated ({len(raw)} of {nbytes} bytes)", path)
        data = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)))
    return data.reshape(shape, order="F" if fortran else "C").astype(np.float32)


def load_npz(path: str | Path) -> GaussianSet:
    """Read a ``.npz`` written by :func:`save_npz` (or any with the same arrays)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            a = {k: _array(z, k, path) for k in FIELDS}
    except (
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
        RuntimeError,
        OSError,
        EOFError,
    ) as e:  # RuntimeError: encrypted
        raise SplatpackError(f"not a readable .npz ({e})", path) from None
    n = a["means"].shape[0] if a["means"].ndim == 2 else -1
    want = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,), "sh0": (n, 1, 3)}
    if n < 0 or any(a[k].shape != s for k, s in want.items()) or a["shN"].shape[::2] != (n, 3):
        raise SplatpackError("array shapes do not describe one set of Gaussians", path)
    if a["shN"].shape[1] not in (0, 3, 8, 15):
        raise SplatpackError(f"shN has {a['shN'].shape[1]} coefficients (SH degree 0..3 has 0, 3, 8 or 15)", path)
    return GaussianSet(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in a.items()})


FORMAT = SceneFormat(
    name="npz",
    extensions=(".npz",),
    sniff=lambda head, path: head[:4] == b"PK\x03\x04" and path.suffix.lower() == ".npz",
    read=load_npz,
    write=save_npz,
)
