"""INRIA 3DGS ``.ply`` (the layout of graphdeco-inria/gaussian-splatting's ``save_ply``).

One binary-little-endian ``vertex`` element with float32 properties, in this order:
``x y z nx ny nz f_dc_0..2 f_rest_0..(3(K−1)−1) opacity scale_0..2 rot_0..3``.
``f_rest`` is channel-major (all red coefficients, then green, then blue), ``opacity`` is
the logit, ``scale_*`` the log-scales and ``rot_*`` the ``wxyz`` quaternion — exactly the
unconstrained values of :class:`~splatpack.core.GaussianSet`. Every 3DGS viewer opens it.
Written with plyfile, atomically, after :func:`~splatpack.core.validate.validate_gaussians`; read
with :mod:`~splatpack.formats.ply_header`, which checks every element against the file size and
reads only ``vertex``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.core.atomic import atomic_write
from splatpack.core.errors import SplatpackError
from splatpack.core.limits import check_gaussians
from splatpack.core.validate import validate_gaussians
from splatpack.formats.base import SceneFormat
from splatpack.formats.ply_header import MAX_HEADER, check_element_sizes, parse_ply_header, read_element


def ply_properties(sh_degree: int) -> list[str]:
    n_rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(n_rest)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


def gaussians_to_array(gs: GaussianSet) -> np.ndarray:
    """Structured float32 array in the INRIA property order."""
    g = gs.detach()
    n = len(g)
    rest = g.shN.transpose(1, 2).reshape(n, -1)  # [N, 3, K-1] -> channel-major
    cols = [g.means, torch.zeros(n, 3), g.sh0[:, 0, :], rest, g.opacities[:, None], g.scales, g.quats]
    data = torch.cat([c.float().cpu() for c in cols], dim=1).numpy()
    dtype = [(name, "<f4") for name in ply_properties(g.sh_degree)]
    return np.ascontiguousarray(data).view(dtype).reshape(n)


def save_ply(gs: GaussianSet, path: str | Path) -> Path:
    from plyfile import PlyData, PlyElement

    path = Path(path)
    validate_gaussians(gs, path)
    el = PlyElement.describe(gaussians_to_array(gs), "vertex")
    with atomic_write(path, "wb") as f:
        PlyData([el], text=False, byte_order="<").write(f)
    return path


REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2", "rot_0")
REQUIRED += ("rot_1", "rot_2", "rot_3")


def rest_properties(names: tuple[str, ...], path: str | Path) -> list[str]:
    """The ``f_rest_*`` property names in coefficient order, after checking the 3DGS properties are
    there and the ``f_rest`` ones are ``f_rest_0..f_rest_{M−1}`` with M = 0, 9, 24 or 45."""
    missing = [r for r in REQUIRED if r not in names]
    if missing:
        raise SplatpackError(f"not a 3DGS PLY: missing properties {', '.join(missing[:5])}", path)
    rest = [k for k in names if k.startswith("f_rest_")]
    want = [f"f_rest_{i}" for i in range(len(rest))]
    if set(rest) != set(want):
        odd = sorted(set(rest) - set(want))[0]
        raise SplatpackError(f"PLY property {odd[:40]!r} breaks the sequence f_rest_0..f_rest_{len(rest) - 1}", path)
    if len(rest) not in (0, 9, 24, 45):
        raise SplatpackError(
            f"unexpected number of f_rest properties: {len(rest)} (SH degrees 0 to 3 have 0, 9, 24 or 45)", path
        )
    return want


def load_ply(path: str | Path) -> GaussianSet:
    """Read an INRIA 3DGS PLY; a clear :class:`SplatpackError` for anything else. Every element's
    size is checked against the file before anything is read, and only ``vertex`` is read
    (:mod:`~splatpack.formats.ply_header`)."""
    path = Path(path)
    if not path.is_file():
        raise SplatpackError("file does not exist", path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            header = parse_ply_header(f.read(MAX_HEADER), path)
            check_element_sizes(header, size, path)
            vertex = header.element("vertex")
            if vertex is None:
                raise SplatpackError("PLY has no 'vertex' element", path)
            rest_names = rest_properties(vertex.names, path)
            check_gaussians(vertex.count, path)
            v = read_element(f, header, "vertex", path)
    except SplatpackError:
        raise
    except Exception as e:  # an unreadable file
        raise SplatpackError(f"cannot read PLY: {type(e).__name__}: {e}", path) from None
    col = lambda k: torch.from_numpy(np.asarray(v[k], dtype=np.float32).copy())
    n = len(v)
    k_rest = len(rest_names) // 3
    shN = (
        torch.stack([col(k) for k in rest_names], dim=1).reshape(n, 3, k_rest).transpose(1, 2)
        if k_rest
        else torch.zeros(n, 0, 3)
    )
    gs = GaussianSet(
        means=torch.stack([col("x"), col("y"), col("z")], dim=1),
        quats=torch.stack([col(f"rot_{i}") for i in range(4)], dim=1),
        scales=torch.stack([col(f"scale_{i}") for i in range(3)], dim=1),
        opacities=col("opacity"),
        sh0=torch.stack([col(f"f_dc_{i}") for i in range(3)], dim=1)[:, None, :],
        shN=shN.contiguous(),
    )
    if not all(torch.isfinite(t).all() for t in (gs.means, gs.scales, gs.quats)):
        raise SplatpackError("PLY contains non-finite positions, scales or rotations", path)
    return gs


def ply_size(num_gaussians: int, sh_degree: int = 3) -> int:
    """Bytes of the INRIA PLY that :func:`save_ply` writes for this many Gaussians (the
    reference for compression ratios: 248 bytes per Gaussian at SH degree 3, plus the header)."""
    props = ply_properties(sh_degree)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {num_gaussians}\n" + "".join(f"property float {p}\n" for p in props) + "end_header\n"
    )
    return len(header.encode()) + 4 * len(props) * num_gaussians


def _sniff(head: bytes, path: Path) -> bool:
    return head.startswith(b"ply")  # after compressed-ply in the registry


FORMAT = SceneFormat(name="ply", extensions=(".ply",), sniff=_sniff, read=load_ply, write=save_ply)
