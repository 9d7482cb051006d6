"""Helpers for the scene-format tests (``tests/formats/``): random scenes, error measures for
round trips through quantising formats, gsply's input record, and the hypothesis settings of the
bad-input tests. The fixture ``samples`` (one small valid file per format) is in
``tests/formats/conftest.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

from splatpack.core import GaussianSet

FUZZ = settings(
    max_examples=40,
    deadline=3000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def random_set(
    n: int = 300, degree: int = 0, seed: int = 0, pos_scale: float = 1.0, sh_scale: float = 0.3
) -> GaussianSet:
    """``n`` seeded random Gaussians of SH degree ``degree`` (unnormalised quaternions, log-scales
    around −4, SH rest of standard deviation ``sh_scale``)."""
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianSet(
        means=torch.randn(n, 3, generator=g) * pos_scale,
        quats=torch.randn(n, 4, generator=g),
        scales=torch.randn(n, 3, generator=g) * 0.7 - 4,
        opacities=torch.randn(n, generator=g) * 2,
        sh0=torch.randn(n, 1, 3, generator=g) * 0.8,
        shN=torch.randn(n, k - 1, 3, generator=g) * sh_scale,
    )


def unit(q: torch.Tensor) -> torch.Tensor:
    return q / q.norm(dim=1, keepdim=True)


def min_quat_dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """Smallest |⟨â, b̂⟩| (1 = same rotation; q and −q are the same rotation)."""
    return (unit(a.double()) * unit(b.double())).sum(1).abs().min().item()


def max_err(a, b) -> float:
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return float(d.max()) if d.size else 0.0


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def gsply_data(gs: GaussianSet):
    """``gs`` as gsply's ``GSData`` (to have gsply write a file of it); skips without gsply."""
    gsply = pytest.importorskip("gsply")
    return gsply.GSData.from_arrays(
        np_(gs.means).astype("f4"),
        np_(gs.scales).astype("f4"),
        np_(gs.quats).astype("f4"),
        np_(gs.opacities).astype("f4"),
        np_(gs.sh0[:, 0]).astype("f4"),
        np_(gs.shN).astype("f4") if gs.shN.shape[1] else None,
        format="ply",
    )
