"""The one check of a :class:`~splatpack.core.GaussianSet` before anything writes it.

Every writer runs :func:`validate_gaussians` first (:func:`~splatpack.formats.save_scene`, the grid
codec behind ``.spk``, and the format writers when called directly), so splatpack never writes a
file that its own readers refuse: every field a tensor of the shape the others imply, SH degree
0..3 (``shN`` with 0, 3, 8 or 15 coefficients per channel), at least one Gaussian unless the caller
allows an empty scene, and only finite values. Problems are one :class:`SplatpackError`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from splatpack.core.errors import SplatpackError

__all__ = ["SH_REST_COEFFS", "validate_gaussians"]

#: ``shN`` coefficients per channel of SH degrees 0, 1, 2 and 3
SH_REST_COEFFS = (0, 3, 8, 15)
#: the shape of each field after its leading N (``shN`` is checked apart)
TRAILING = {"means": (3,), "quats": (4,), "scales": (3,), "opacities": (), "sh0": (1, 3)}


def _finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite (NaN and ±inf both reach the max or the min; no copy)."""
    if t.numel() == 0 or not t.is_floating_point():
        return True
    t = t.detach()
    return bool(torch.isfinite(t.amax())) and bool(torch.isfinite(t.amin()))


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _sh_rest_error(k: int) -> str:
    degree = round((k + 1) ** 0.5) - 1
    if (degree + 1) ** 2 == k + 1:
        return f"cannot write SH degree {degree} (shN has {k} coefficients; splatpack writes degrees 0 to 3)"
    return f"cannot write: shN has {k} coefficients per channel (SH degrees 0 to 3 have 0, 3, 8 or 15)"


def validate_gaussians(gs, path: str | Path | None = None, *, allow_empty: bool = False) -> None:
    """Raise :class:`SplatpackError` (naming ``path``) unless ``gs`` can be written: consistent
    shapes, SH degree 0..3, N > 0 (or ``allow_empty``) and finite values in every field."""
    fields = {name: getattr(gs, name, None) for name in (*TRAILING, "shN")}
    for name, t in fields.items():
        if not isinstance(t, torch.Tensor):
            raise SplatpackError(f"cannot write: '{name}' is {type(t).__name__}, not a tensor", path)
    means = fields["means"]
    if means.ndim != 2:
        raise SplatpackError(f"cannot write: 'means' has shape {_shape(tuple(means.shape))}, expected [N, 3]", path)
    n = means.shape[0]
    for name, trailing in TRAILING.items():
        shape = tuple(fields[name].shape)
        if shape != (n, *trailing):
            want = _shape((n, *trailing))
            raise SplatpackError(f"cannot write: '{name}' has shape {_shape(shape)}, expected {want}", path)
    shn = tuple(fields["shN"].shape)
    if len(shn) != 3 or shn[0] != n or shn[2] != 3:
        raise SplatpackError(f"cannot write: 'shN' has shape {_shape(shn)}, expected [{n}, K, 3]", path)
    if shn[1] not in SH_REST_COEFFS:
        raise SplatpackError(_sh_rest_error(shn[1]), path)
    if n == 0 and not allow_empty:
        raise SplatpackError("cannot write an empty scene (no Gaussians)", path)
    for name, t in fields.items():
        if not _finite(t):
            raise SplatpackError(f"cannot write: '{name}' has non-finite values", path)
