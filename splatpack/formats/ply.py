"""INRIA 3DGS ``.ply`` (the layout of graphdeco-inria/gaussian-splatting's ``save_ply``).

One binary-little-endian ``vertex`` element with float32 properties, in this order:
``x y z nx ny nz f_dc_0..2 f_rest_0..(3(K−1)−1) opacity scale_0..2 rot_0..3``.
``f_rest`` is channel-major (all red coefficients, then green, then blue), ``opacity`` is
the logit, ``scale_*`` the log-scales and ``rot_*`` the ``wxyz`` quaternion — exactly the
unconstrained values of :class:`~splatpack.core.GaussianSet`. Every 3DGS viewer opens it.
Read and written with plyfile; writes are atomic.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.core.atomic import atomic_write
from splatpack.core.errors import SplatpackError
from splatpack.formats.base import SceneFormat


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
    el = PlyElement.describe(gaussians_to_array(gs), "vertex")
    with atomic_write(path, "wb") as f:
        PlyData([el], text=False, byte_order="<").write(f)
    return path


def load_ply(path: str | Path) -> GaussianSet:
    """Read an INRIA 3DGS PLY; a clear :class:`SplatpackError` for anything else."""
    from plyfile import PlyData

    path = Path(path)
    if not path.is_file():
        raise SplatpackError("file does not exist", path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            header = f.read(4096)
        if not header.startswith(b"ply"):
            raise SplatpackError("not a PLY file (missing 'ply' magic)", path)
        m = re.search(rb"element vertex (\d+)", header)
        if m is None:
            raise SplatpackError("PLY has no 'vertex' element", path)
        n_props = header.split(b"end_header")[0].count(b"property ")
        if int(m.group(1)) * max(n_props, 1) * 4 > size:
            raise SplatpackError(
                f"header claims {int(m.group(1))} vertices but the file holds {size} bytes (truncated?)", path
            )
        ply = PlyData.read(str(path))
    except SplatpackError:
        raise
    except Exception as e:  # plyfile raises a variety of errors on corrupt input
        raise SplatpackError(f"cannot read PLY: {type(e).__name__}: {e}", path) from None
    v = ply["vertex"].data
    names = v.dtype.names or ()
    required = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2"]
    missing = [r for r in required + ["rot_0", "rot_1", "rot_2", "rot_3"] if r not in names]
    if missing:
        raise SplatpackError(f"not a 3DGS PLY: missing properties {', '.join(missing[:5])}", path)
    col = lambda k: torch.from_numpy(np.asarray(v[k], dtype=np.float32).copy())
    n = len(v)
    rest_names = sorted((k for k in names if k.startswith("f_rest_")), key=lambda s: int(s.split("_")[-1]))
    k_rest = len(rest_names) // 3
    if 3 * k_rest != len(rest_names) or (k_rest + 1) not in (1, 4, 9, 16):
        raise SplatpackError(f"unexpected number of f_rest properties: {len(rest_names)}", path)
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
