"""Multiresolution hash encoding (Instant-NGP), bit-compatible with tiny-cuda-nn's ``HashGrid``.

Müller et al., "Instant Neural Graphics Primitives with a Multiresolution Hash Encoding",
SIGGRAPH 2022, §3. A point ``x ∈ [0, 1]³`` is encoded by ``L`` levels of ``F`` trainable
features each. Level ``l`` has the growth factor and scale (eq. 2–3 of the paper, in the form
tiny-cuda-nn implements it: "``base_resolution`` counts grid *vertices*")::

    s_l  = 2^(l · log2 b) · N_min − 1          (b = per_level_scale, N_min = base_resolution)
    R_l  = ⌈s_l⌉ + 1                           (vertices per axis)
    T_l  = min(next_multiple(R_l³, 8), 2^log2_hashmap_size)   (table entries)

and the position ``p = x · s_l + ½`` (the ½ staggers the levels, paper appendix A), cell
``⌊p⌋`` and local coordinate ``t = p − ⌊p⌋``. The 8 corners ``v = ⌊p⌋ + c, c ∈ {0,1}³`` are
mapped to table entries by (eq. 4, "coherent prime" hash, all arithmetic modulo 2³²)::

    h(v) = (v_x · R⁰ + v_y · R¹ + v_z · R²)  mod T_l          if R_l³ ≤ T_l  (dense level)
    h(v) = (v_x · 1 ⊕ v_y · 2654435761 ⊕ v_z · 805459861) mod T_l   otherwise (hashed level)

and the level's output is the trilinear interpolation ``y_l = Σ_c w_c θ_l[h(⌊p⌋ + c)]`` with
``w_c = Π_d (c_d ? t_d : 1 − t_d)``. The encoding is ``concat_l y_l`` (``[N, L·F]``).

Parameter layout (identical to ``tcnn.Encoding(...).params``): one flat float32 vector; level
``l`` owns entries ``[offset_l, offset_l + T_l)`` (``offset_l = Σ_{k<l} T_k``) and entry ``e``
stores its ``F`` features contiguously at ``params[(offset_l + e)·F : (offset_l + e + 1)·F]``.
Initialisation is ``U(−1e-4, 1e-4)``. The scales are computed in float32 as the CUDA code does
(``exp2f(l · log2f(b)) · N_min − 1``) and the position ``p`` is a float32 computed with a fused
multiply-add, so a table trained with tinycudann on a GPU decodes here to the same cells and
weights; features agree to float32 rounding (CUDA contracts the accumulation into FMAs, which
the numba kernel emulates; the torch path rounds each step separately — ≲1 ulp). One caveat:
CUDA's ``exp2f`` may be off by an ulp or two, so a level whose scale lies within a few ulp of an
integer could get a different resolution on the GPU; :func:`grid_levels` warns about such
configurations (none of the usual ones, e.g. Compact-3DGS' ``b = 1.447``, comes close). Inputs
outside ``[0, 1]`` are not clamped: like tcnn they wrap (modulo 2³² and ``T``), always in range.

Modules: :mod:`.config` (configuration, level layout), :mod:`.reference` (float64 reference and
vectorised torch), :mod:`.kernels` (numba CPU kernels), :mod:`.numba_backend` (their autograd
Function and scheduling), :mod:`.encoding` (:class:`HashGridEncoding`, backend choice, tcnn).

Backends (``HashGridEncoding(backend=...)``):

* ``"numba"`` — CPU kernels. tinycudann is CUDA-only and not on PyPI, so a CPU-first toolkit
  needs its own kernel; the vectorised torch version is much slower on CPU
  (``benchmarks/colour_field_speed.py``). Like tcnn's kernels, each worker processes one level
  at a time, and the backward is deterministic (levels own disjoint slices of ``params``).
* ``"torch"`` — vectorised pure torch, any device (used on CUDA when tinycudann is absent).
* ``"tcnn"`` — ``tinycudann.Encoding`` on CUDA tensors, sharing this module's ``params``.
* ``"auto"`` — tcnn on CUDA when importable, torch on other non-CPU devices, numba on CPU.

No backend gives a gradient with respect to the positions: the encoding is differentiated
with respect to its table only (the colour field of Compact-3DGS detaches the positions).
"""

from splatpack.compress.hash_grid.config import (
    PRIME_X,
    PRIME_Y,
    PRIME_Z,
    HashGridBackend,
    HashGridConfig,
    LevelInfo,
    grid_levels,
)
from splatpack.compress.hash_grid.encoding import HashGridEncoding, tcnn_available
from splatpack.compress.hash_grid.numba_backend import hash_encode_numba
from splatpack.compress.hash_grid.reference import hash_encode_reference, hash_encode_torch

__all__ = [
    "PRIME_X",
    "PRIME_Y",
    "PRIME_Z",
    "HashGridBackend",
    "HashGridConfig",
    "HashGridEncoding",
    "LevelInfo",
    "grid_levels",
    "hash_encode_numba",
    "hash_encode_reference",
    "hash_encode_torch",
    "tcnn_available",
]
