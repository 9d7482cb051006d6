"""antimatter15 ``.splat`` (the format of antimatter15/splat's ``convert.py`` and WebGL viewer).

No header: the file is an array of 32-byte little-endian records, one per Gaussian:

==========  ==========  ======================================================
bytes 0–11  f32 × 3     position ``xyz``
bytes 12–23 f32 × 3     *linear* scales (``exp`` of the log-scales)
bytes 24–27 u8 × 4      ``RGBA``: ``rgb = 0.5 + SH_C0·f_dc`` and ``a = sigmoid(opacity)``, × 255
bytes 28–31 u8 × 4      rotation ``wxyz``, normalised, stored as ``q·128 + 128`` (clipped)
==========  ==========  ======================================================

Only the SH DC term survives (higher bands are dropped on write; a read gives degree 0).
Positions are in the frame of the INRIA PLY they came from (no axis conversion), as in
antimatter15's converter and PlayCanvas splat-transform (``read-splat.ts``). The records are
written in the input order (antimatter15 sorts by size·opacity for progressive loading;
viewers sort per frame, so order carries no meaning).

Reading checks the size is a whole number of records and rejects non-finite positions and
non-positive or non-finite scales with :class:`~splatpack.core.errors.SplatpackError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.core.atomic import atomic_write_bytes
from splatpack.core.errors import SplatpackError
from splatpack.core.limits import check_gaussians
from splatpack.core.sh import SH_C0
from splatpack.core.validate import validate_gaussians
from splatpack.formats.base import SceneFormat

RECORD = np.dtype([("pos", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)), ("rot", "u1", (4,))])
assert RECORD.itemsize == 32
OPACITY_EPS = 1e-6  # 8-bit alpha 0 and 255 decode to logit(1e-6) and logit(1 - 1e-6), not ±inf


def logit_u8(a: np.ndarray) -> np.ndarray:
    """Opacity logit of an 8-bit alpha ``a/255``, clamped away from 0 and 1."""
    p = np.clip(a.astype(np.float64) / 255.0, OPACITY_EPS, 1.0 - OPACITY_EPS)
    return np.log(p / (1.0 - p)).astype(np.float32)


def quantize_u8(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer and clip to ``[0, 255]``."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def unit_quats(q: np.ndarray) -> np.ndarray:
    """Normalise quaternions [N, 4] in float64; zero-length (or non-finite) ones become identity."""
    q = np.asarray(q, dtype=np.float64)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    bad = ~np.isfinite(norm[:, 0]) | (norm[:, 0] < 1e-12)
    out = q / np.where(bad[:, None], 1.0, norm)
    out[bad] = (1.0, 0.0, 0.0, 0.0)
    return out


def require_finite(gs: GaussianSet, path: str | Path) -> None:
    """The writers' check (:func:`~splatpack.core.validate.validate_gaussians`) for direct callers:
    shapes, SH degree 0..3 and finite values; whether an empty scene can be written is each writer's."""
    validate_gaussians(gs, path, allow_empty=True)


def decode_splat(data: bytes | memoryview, path: str | Path = "<bytes>") -> GaussianSet:
    """Gaussians from the bytes of a ``.splat`` file."""
    size = len(data)
    if size == 0:
        raise SplatpackError("empty .splat file", path)
    if size % RECORD.itemsize:
        raise SplatpackError(f".splat size {size} is not a multiple of 32 bytes (truncated?)", path)
    check_gaussians(size // RECORD.itemsize, path, sh_degree=0)
    rec = np.frombuffer(data, dtype=RECORD)
    means = rec["pos"]
    if not np.isfinite(means).all():
        raise SplatpackError(".splat contains non-finite positions", path)
    lin = rec["scale"].astype(np.float64)
    if not np.isfinite(lin).all() or (lin < 0).any():
        raise SplatpackError(".splat contains negative or non-finite scales", path)
    scales = np.log(np.maximum(lin, np.finfo(np.float32).tiny))
    rgba = rec["rgba"]
    sh0 = (rgba[:, :3].astype(np.float64) / 255.0 - 0.5) / SH_C0
    quats = unit_quats((rec["rot"].astype(np.float64) - 128.0) / 128.0)
    n = len(rec)
    return GaussianSet(
        means=torch.from_numpy(means.astype(np.float32)),
        quats=torch.from_numpy(quats.astype(np.float32)),
        scales=torch.from_numpy(scales.astype(np.float32)),
        opacities=torch.from_numpy(logit_u8(rgba[:, 3])),
        sh0=torch.from_numpy(sh0.astype(np.float32)).reshape(n, 1, 3),
        shN=torch.zeros(n, 0, 3),
    )


def encode_splat(gs: GaussianSet) -> bytes:
    """The ``.splat`` bytes of ``gs`` (higher SH bands dropped)."""
    g = gs.detach()
    means = g.means.double().cpu().numpy()
    log_scales = np.clip(g.scales.double().cpu().numpy(), -80.0, 80.0)  # exp stays finite in f32
    rec = np.zeros(len(g), dtype=RECORD)
    rec["pos"] = means
    rec["scale"] = np.exp(log_scales)
    rgb = 0.5 + SH_C0 * g.sh0[:, 0, :].double().cpu().numpy()
    alpha = torch.sigmoid(g.opacities.double()).cpu().numpy()
    rec["rgba"][:, :3] = quantize_u8(rgb * 255.0)
    rec["rgba"][:, 3] = quantize_u8(alpha * 255.0)
    rec["rot"] = quantize_u8(unit_quats(g.quats.cpu().numpy()) * 128.0 + 128.0)
    return rec.tobytes()


def load_splat(path: str | Path) -> GaussianSet:
    """Read an antimatter15 ``.splat`` file (SH degree 0)."""
    path = Path(path)
    if not path.is_file():
        raise SplatpackError("file does not exist", path)
    return decode_splat(path.read_bytes(), path)


def save_splat(gs: GaussianSet, path: str | Path) -> Path:
    """Write ``gs`` as an antimatter15 ``.splat`` file (atomically); SH bands above 0 are dropped."""
    path = Path(path)
    require_finite(gs, path)
    if len(gs) == 0:
        raise SplatpackError("cannot write an empty scene as .splat (readers refuse empty files)", path)
    atomic_write_bytes(path, encode_splat(gs))
    return path


FORMAT = SceneFormat(
    name="splat",
    extensions=(".splat",),
    sniff=lambda head, path: path.suffix.lower() == ".splat",
    read=load_splat,
    write=save_splat,
)
