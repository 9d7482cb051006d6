"""``GaussianSet``: the parameters of a 3D Gaussian Splatting scene (Kerbl et al. 2023).

Stored in the *unconstrained* form the optimiser works on, with gsplat's names:

=================  ===========  =================================================
``means``          [N, 3]       world positions
``quats``          [N, 4]       rotations, ``wxyz``, not necessarily unit
``scales``         [N, 3]       log of the per-axis standard deviations
``opacities``      [N]          logits of opacity
``sh0``            [N, 1, 3]    SH DC coefficients
``shN``            [N, K−1, 3]  higher SH bands, K = (degree + 1)²
=================  ===========  =================================================
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from splatpack.core.sh import num_sh_bases, rgb_to_sh, sh_degree_from_bases


@dataclass
class GaussianSet:
    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    sh0: Tensor
    shN: Tensor

    # ---- shape --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_bases(1 + self.shN.shape[1])

    # ---- constrained values ----------------------------------------------------------------
    @property
    def linear_scales(self) -> Tensor:
        return torch.exp(self.scales)

    @property
    def alphas(self) -> Tensor:
        return torch.sigmoid(self.opacities)

    @property
    def sh(self) -> Tensor:
        """All SH coefficients [N, K, 3]."""
        return torch.cat([self.sh0, self.shN], dim=1)

    # ---- conversions -----------------------------------------------------------------------
    def to_parameters(self) -> torch.nn.ParameterDict:
        """A ``ParameterDict`` with gsplat's keys, as its strategies expect."""
        return torch.nn.ParameterDict(
            {f.name: torch.nn.Parameter(getattr(self, f.name).detach().clone()) for f in fields(self)}
        )

    @classmethod
    def from_parameters(cls, params) -> GaussianSet:
        return cls(**{f.name: params[f.name].detach().clone() for f in fields(cls)})

    @classmethod
    def from_numpy(cls, means, quats, scales, opacities, sh0, shN) -> GaussianSet:
        """float32 tensors from arrays: means [N,3], quats [N,4], log scales [N,3], opacity logits
        [N], sh0 [N,1,3] (or [N,3]), shN [N,K−1,3]."""

        def f32(a):
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

        n = len(means)
        return cls(f32(means), f32(quats), f32(scales), f32(opacities).reshape(n), f32(sh0).reshape(n, 1, 3), f32(shN))

    def detach(self) -> GaussianSet:
        return GaussianSet(**{f.name: getattr(self, f.name).detach() for f in fields(self)})

    def to(self, device) -> GaussianSet:
        return GaussianSet(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def subset(self, index: Tensor) -> GaussianSet:
        return GaussianSet(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    # ---- initialisation --------------------------------------------------------------------
    @classmethod
    def from_points(
        cls,
        points: np.ndarray,
        colors: np.ndarray | None = None,
        sh_degree: int = 3,
        init_opacity: float = 0.1,
        init_scale: float = 1.0,
        seed: int = 0,
    ) -> GaussianSet:
        """Isotropic Gaussians at ``points`` [P, 3] with colours [P, 3] (uint8 or [0, 1]).

        Scale: the mean distance to the 3 nearest neighbours (as 3DGS and gsplat), times
        ``init_scale``; rotation identity; opacity ``init_opacity``.
        """
        from scipy.spatial import cKDTree

        pts = np.asarray(points, dtype=np.float64)
        if len(pts) < 2:
            raise ValueError("need at least 2 points to initialise Gaussians")
        dist, _ = cKDTree(pts).query(pts, k=min(4, len(pts)))
        d = np.sqrt(np.mean(dist[:, 1:] ** 2, axis=1))  # RMS of the 3 nearest (3DGS's distCUDA2)
        d = np.clip(d, 1e-7, None) * init_scale
        n = len(pts)
        if colors is None:
            rgb = np.random.default_rng(seed).random((n, 3))
        else:
            rgb = np.asarray(colors, dtype=np.float64)
            rgb = rgb / 255.0 if rgb.max() > 1.0 or np.asarray(colors).dtype == np.uint8 else rgb
        k = num_sh_bases(sh_degree)
        return cls(
            means=torch.from_numpy(pts).float(),
            quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
            scales=torch.log(torch.from_numpy(d).float())[:, None].repeat(1, 3),
            opacities=torch.logit(torch.full((n,), float(init_opacity))),
            sh0=rgb_to_sh(torch.from_numpy(rgb).float())[:, None, :],
            shN=torch.zeros(n, k - 1, 3),
        )

    @classmethod
    def random_in_box(
        cls, n: int, lo: np.ndarray, hi: np.ndarray, sh_degree: int = 3, seed: int = 0, **kw
    ) -> GaussianSet:
        """``n`` Gaussians uniformly inside the box [lo, hi] with random colours (3DGS's init for
        captures without SfM points)."""
        rng = np.random.default_rng(seed)
        pts = rng.uniform(np.asarray(lo, float), np.asarray(hi, float), size=(n, 3))
        return cls.from_points(pts, rng.random((n, 3)), sh_degree=sh_degree, seed=seed, **kw)
