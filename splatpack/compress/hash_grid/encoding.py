"""The hash-encoding module :class:`HashGridEncoding` and its backend choice (numba, torch, tcnn).

Müller et al., "Instant Neural Graphics Primitives with a Multiresolution Hash Encoding",
SIGGRAPH 2022. Backends: ``"numba"`` (CPU kernels), ``"torch"`` (vectorised, any device),
``"tcnn"`` (``tinycudann.Encoding`` on CUDA, sharing this module's ``params``) and ``"auto"``
(tcnn on CUDA when importable, torch on other non-CPU devices, numba on CPU).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from splatpack.compress.hash_grid.config import (
    INIT_RANGE,
    HashGridBackend,
    HashGridConfig,
    LevelInfo,
    grid_levels,
    level_table,
)
from splatpack.compress.hash_grid.numba_backend import NumbaHashGrid, check_numba_inputs, level_arrays
from splatpack.compress.hash_grid.reference import hash_encode_torch

__all__ = ["HashGridEncoding", "tcnn_available"]


def tcnn_available() -> bool:
    try:
        import tinycudann  # noqa: F401
    except Exception:  # ImportError, or a CUDA/driver error raised at import
        return False
    return True


class HashGridEncoding(torch.nn.Module):
    """Multiresolution hash encoding ``[N, 3] ∈ [0,1]³ → [N, L·F]`` (float32), tcnn layout.

    ``params`` is the flat float32 table of all levels; see :mod:`splatpack.compress.hash_grid`
    for the equations and :meth:`levels` for the per-level slices. Positions receive no gradient.
    """

    def __init__(self, cfg: HashGridConfig | None = None, backend: HashGridBackend = "auto") -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else HashGridConfig()
        if backend not in ("auto", "numba", "torch", "tcnn"):
            raise ValueError(f"unknown hash-grid backend {backend!r}")
        self.backend: HashGridBackend = backend
        self._levels = grid_levels(self.cfg)
        self._level_arrays = level_arrays(self._levels)
        n_params = (self._levels[-1].offset + self._levels[-1].size) * self.cfg.n_features_per_level
        self.params = torch.nn.Parameter(torch.empty(n_params, dtype=torch.float32).uniform_(-INIT_RANGE, INIT_RANGE))
        self._tcnn: Any = None  # tinycudann.Encoding, created on the first CUDA call (not a submodule)

    @property
    def n_output_dims(self) -> int:
        return self.cfg.n_output_dims

    @property
    def n_params(self) -> int:
        return self.params.numel()

    def levels(self) -> list[LevelInfo]:
        """Each level's (offset, size) in table entries, resolution, scale and dense flag."""
        return list(self._levels)

    def level_table(self, level: int) -> Tensor:
        """View ``[T_l, F]`` of one level's entries inside ``params``."""
        return level_table(self.params, self._levels[level], self.cfg.n_features_per_level)

    def resolve_backend(self, device: torch.device) -> str:
        if self.backend != "auto":
            return self.backend
        if device.type == "cuda" and tcnn_available():
            return "tcnn"
        return "numba" if device.type == "cpu" else "torch"

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[-1] != 3:
            raise ValueError(f"expected positions [N, 3], got {tuple(x.shape)}")
        backend = self.resolve_backend(x.device)
        if backend == "numba":
            check_numba_inputs(self.params, x)
            return NumbaHashGrid.apply(x, self.params, self._level_arrays, self.cfg.n_features_per_level)
        if backend == "torch":
            return hash_encode_torch(self.params, x.to(torch.float32), self.cfg)
        if backend == "tcnn":
            return self._forward_tcnn(x)
        raise ValueError(f"unknown hash-grid backend {backend!r}")

    def _forward_tcnn(self, x: Tensor) -> Tensor:
        if x.device.type != "cuda":
            raise ValueError("the tcnn hash-grid backend needs CUDA tensors")
        if self._tcnn is None:
            import tinycudann as tcnn

            enc = tcnn.Encoding(3, self.cfg.tcnn_config(), dtype=torch.float32)
            if enc.params.numel() != self.params.numel():
                raise RuntimeError(f"tcnn HashGrid has {enc.params.numel()} params, ours {self.params.numel()}")
            object.__setattr__(self, "_tcnn", enc)  # keep it out of _modules / state_dict
        self._tcnn.params = self.params  # share our Parameter: one table, our optimiser
        return self._tcnn(x.detach().to(torch.float32).contiguous()).to(torch.float32)

    def extra_repr(self) -> str:
        c = self.cfg
        n_dense = sum(lv.dense for lv in self._levels)
        return (
            f"levels={c.n_levels}, features={c.n_features_per_level}, log2_T={c.log2_hashmap_size}, "
            f"base={c.base_resolution}, scale={c.per_level_scale}, dense_levels={n_dense}, "
            f"params={self.n_params}, backend={self.backend}"
        )
