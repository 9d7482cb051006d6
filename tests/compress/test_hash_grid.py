"""Multiresolution hash encoding (Instant-NGP, tiny-cuda-nn layout): layout, values, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import splatpack.compress.hash_grid as hash_grid_pkg
from splatpack.compress.hash_grid import (
    PRIME_Y,
    PRIME_Z,
    HashGridConfig,
    HashGridEncoding,
    grid_levels,
    hash_encode_numba,
    hash_encode_reference,
    hash_encode_torch,
    numba_backend,
)
from splatpack.compress.hash_grid.config import level_table
from splatpack.compress.hash_grid.kernels import grid_kernels
from splatpack.compress.hash_grid.numba_backend import check_numba_inputs, level_arrays

# 8 levels, base 4, ×1.6: resolutions 4, 7 | 11, 17, 27, … → two dense levels, six hashed (T = 2^10)
SMALL = HashGridConfig(n_levels=8, n_features_per_level=2, log2_hashmap_size=10, base_resolution=4, per_level_scale=1.6)
# Compact-3DGS levels with a 2^12 table: level 0 (16³ = 4096 = T) is dense, exactly at the boundary
MID = HashGridConfig(log2_hashmap_size=12)


def _points(n: int, seed: int = 0) -> torch.Tensor:
    """Random points plus the awkward ones: the cube's corners (exactly 0 and 1) and edges."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=g)
    corners = torch.tensor([[i, j, k] for i in (0.0, 1.0) for j in (0.0, 1.0) for k in (0.0, 1.0)])
    edges = torch.tensor([[0.0, 0.5, 1.0], [1.0, 0.25, 0.0], [1 - 1e-7, 1.0, 1e-7], [0.5, 0.5, 0.5]])
    return torch.cat([x, corners, edges]).float()


def _encoding(cfg: HashGridConfig, seed: int = 0, scale: float = 1.0) -> HashGridEncoding:
    enc = HashGridEncoding(cfg, backend="numba")
    with torch.no_grad():
        enc.params.uniform_(-scale, scale, generator=torch.Generator().manual_seed(seed))
    return enc


# ------------------------------------------------------------------------------------------
# layout
# ------------------------------------------------------------------------------------------


def test_level_layout_follows_tcnn() -> None:
    cfg = HashGridConfig()
    levels = grid_levels(cfg)
    offset = 0
    for lvl, lv in enumerate(levels):
        # tcnn: scale = exp2f(l * log2(b)) * N_min - 1 (float32), R = ceil(scale) + 1
        scale = np.float32(np.exp2(np.float32(lvl) * np.float32(math.log2(np.float32(1.447))))) * np.float32(
            16
        ) - np.float32(1)
        res = int(math.ceil(scale)) + 1
        size = min(-(-(res**3) // 8) * 8, 2**19)
        assert (lv.offset, lv.size, lv.resolution) == (offset, size, res)
        assert lv.dense == (res**3 <= size)
        offset += size
    assert [lv.dense for lv in levels] == [True] * 5 + [False] * 11
    assert (levels[0].resolution, levels[0].size, levels[-1].resolution) == (16, 4096, 4085)
    enc = HashGridEncoding(cfg)
    assert enc.params.dtype == torch.float32 and enc.n_params == offset * 2
    assert float(enc.params.detach().abs().max()) <= 1e-4  # tcnn init U(-1e-4, 1e-4)
    assert enc.level_table(3).shape == (levels[3].size, 2)
    assert enc.level_table(3).data_ptr() == enc.params[levels[3].offset * 2 :].data_ptr()
    # dense exactly at the boundary R³ = T
    assert grid_levels(MID)[0].dense and grid_levels(MID)[0].size == 4096
    assert not any(lv.dense for lv in grid_levels(MID)[1:])
    assert [lv.dense for lv in grid_levels(SMALL)] == [True, True] + [False] * 6


# ------------------------------------------------------------------------------------------
# forward values
# ------------------------------------------------------------------------------------------


def test_reference_hash_by_hand() -> None:
    """Cross-check the float64 reference itself on one hashed level with plain python ints."""
    cfg = HashGridConfig(
        n_levels=1, n_features_per_level=2, log2_hashmap_size=4, base_resolution=8, per_level_scale=2.0
    )
    (lv,) = grid_levels(cfg)
    assert not lv.dense and lv.size == 16 and lv.scale == 7.0
    params = torch.stack([torch.arange(16.0), torch.zeros(16)], dim=1).reshape(-1)  # entry e holds (e, 0)
    x = torch.tensor([[0.3, 0.6, 0.9]])
    pos = [float(np.float32(float(np.float32(v)) * 7.0 + 0.5)) for v in (0.3, 0.6, 0.9)]  # fl32(x·s + ½)
    cell = [math.floor(p) for p in pos]
    frac = [p - c for p, c in zip(pos, cell)]
    expected = 0.0
    for cz in (0, 1):
        for cy in (0, 1):
            for cx in (0, 1):
                vx, vy, vz = cell[0] + cx, cell[1] + cy, cell[2] + cz
                h = (vx ^ ((vy * PRIME_Y) & 0xFFFFFFFF) ^ ((vz * PRIME_Z) & 0xFFFFFFFF)) % 16
                w = (
                    (frac[0] if cx else 1 - frac[0])
                    * (frac[1] if cy else 1 - frac[1])
                    * (frac[2] if cz else 1 - frac[2])
                )
                expected += w * h
    ref = hash_encode_reference(params, x, cfg)
    assert ref[0, 0].item() == pytest.approx(expected, abs=1e-9) and ref[0, 1].item() == 0
    assert hash_encode_numba(params, x, cfg)[0, 0].item() == pytest.approx(expected, abs=1e-5)
    assert hash_encode_torch(params, x, cfg)[0, 0].item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("cfg", [SMALL, MID], ids=["small", "mid"])
def test_numba_and_torch_match_reference(cfg: HashGridConfig) -> None:
    enc = _encoding(cfg)
    x = _points(2000)
    ref = hash_encode_reference(enc.params, x, cfg)
    out_numba = enc(x)
    out_torch = hash_encode_torch(enc.params, x, cfg)
    assert out_numba.shape == (x.shape[0], cfg.n_output_dims) and out_numba.dtype == torch.float32
    assert torch.allclose(out_numba.double(), ref, atol=2e-6, rtol=0)
    assert torch.allclose(out_torch.double(), ref, atol=2e-6, rtol=0)
    assert torch.allclose(out_numba, out_torch, atol=1e-6, rtol=0)
    # every level contributes (a wrong offset or level would zero / shift columns)
    assert bool((out_numba.abs().amax(0) > 0.05).all())


def test_default_config_matches_reference_on_few_points() -> None:
    cfg = HashGridConfig()  # 2^19, 16 levels: 5 dense + 11 hashed
    enc = _encoding(cfg)
    x = _points(50, seed=3)
    ref = hash_encode_reference(enc.params, x, cfg)
    assert torch.allclose(enc(x).double(), ref, atol=2e-6, rtol=0)


@pytest.mark.slow  # only compiles another specialisation (F = 4)
def test_feature_counts_other_than_two() -> None:
    cfg = HashGridConfig(
        n_levels=4, n_features_per_level=4, log2_hashmap_size=10, base_resolution=4, per_level_scale=2.0
    )
    enc = _encoding(cfg)
    x = _points(300, seed=5)
    assert torch.allclose(enc(x).double(), hash_encode_reference(enc.params, x, cfg), atol=2e-6, rtol=0)


def test_dense_level_is_linear_x_fastest_indexing() -> None:
    """Store each dense entry's own vertex coordinates: interpolation then returns p = x·s + ½."""
    cfg = HashGridConfig(
        n_levels=2, n_features_per_level=4, log2_hashmap_size=16, base_resolution=8, per_level_scale=1.5
    )
    enc = HashGridEncoding(cfg, backend="numba")
    for lvl, lv in enumerate(enc.levels()):
        assert lv.dense
        r = lv.resolution
        e = torch.arange(lv.size)
        table = torch.stack([e % r, (e // r) % r, e // (r * r), torch.zeros_like(e)], dim=1).float()
        with torch.no_grad():
            enc.level_table(lvl).copy_(table)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(500, 3, generator=g) * 0.9  # keeps every corner < R (no wrap-around)
    for backend in ("numba", "torch"):
        enc.backend = backend
        out = enc(x)
        for lvl, lv in enumerate(enc.levels()):
            p = (x.double() * lv.scale + 0.5).float()
            got = out[:, lvl * 4 : lvl * 4 + 3]
            assert torch.allclose(got, p, atol=1e-4), (backend, lvl)
            assert bool((out[:, lvl * 4 + 3] == 0).all())


# ------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [SMALL, MID], ids=["small", "mid"])
def test_table_gradient_matches_reference_autograd(cfg: HashGridConfig) -> None:
    enc = _encoding(cfg)
    x = _points(3000, seed=7)
    g_out = torch.randn(x.shape[0], cfg.n_output_dims, generator=torch.Generator().manual_seed(2))

    (g_numba,) = torch.autograd.grad(enc(x), [enc.params], g_out)
    p64 = enc.params.detach().double().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(hash_encode_reference(p64, x, cfg), [p64], g_out.double())
    p32 = enc.params.detach().clone().requires_grad_(True)
    (g_torch,) = torch.autograd.grad(hash_encode_torch(p32, x, cfg), [p32], g_out)

    assert g_numba.shape == enc.params.shape and g_numba.dtype == torch.float32
    scale = float(g_ref.abs().max())
    assert scale > 0
    assert torch.allclose(g_numba.double(), g_ref, atol=1e-5 * scale, rtol=0)
    assert torch.allclose(g_torch.double(), g_ref, atol=1e-5 * scale, rtol=0)
    # the kernel zeroes untouched entries itself (it writes into uninitialised memory)
    assert bool((g_numba[g_ref == 0] == 0).all())


def test_gradients_accumulate_and_positions_get_none() -> None:
    enc = _encoding(SMALL)
    x = _points(200).requires_grad_(True)
    g = torch.Generator().manual_seed(4)
    w1, w2 = torch.randn(x.shape[0], 16, generator=g), torch.randn(x.shape[0], 16, generator=g)
    (enc(x) * w1).sum().backward()
    first = enc.params.grad.clone()
    (enc(x) * w2).sum().backward()
    (g2,) = torch.autograd.grad((enc(x) * w2).sum(), [enc.params])
    assert torch.allclose(enc.params.grad, first + g2, atol=1e-6)
    assert x.grad is None


def test_parallel_launch_is_bit_identical_to_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small batches run on one thread; force the multi-threaded launch (level tasks, and for a
    one-level grid several point blocks per level) and compare bit for bit."""
    one_level = HashGridConfig(n_levels=1, log2_hashmap_size=10, base_resolution=32)
    for cfg in (SMALL, one_level):
        enc = _encoding(cfg, seed=9)
        x = _points(1500, seed=9)
        g_out = torch.randn(x.shape[0], cfg.n_output_dims, generator=torch.Generator().manual_seed(9))
        y_serial = enc(x)
        (g_serial,) = torch.autograd.grad(enc(x), [enc.params], g_out)
        monkeypatch.setattr(numba_backend, "_SERIAL_BELOW", 0)
        y_par = enc(x)
        (g_par,) = torch.autograd.grad(enc(x), [enc.params], g_out)
        monkeypatch.setattr(numba_backend, "_SERIAL_BELOW", 1 << 18)
        assert torch.equal(y_serial, y_par)
        assert torch.equal(g_serial, g_par)


# ------------------------------------------------------------------------------------------
# package seams
# ------------------------------------------------------------------------------------------


def test_package_reexports_its_public_names() -> None:
    for name in hash_grid_pkg.__all__:
        assert getattr(hash_grid_pkg, name) is not None, name
    assert hash_grid_pkg.HashGridEncoding.__module__ == "splatpack.compress.hash_grid.encoding"


def test_level_table_and_level_arrays_follow_grid_levels() -> None:
    enc = _encoding(SMALL)
    levels = grid_levels(SMALL)
    for lvl, lv in enumerate(levels):
        view = level_table(enc.params, lv, SMALL.n_features_per_level)
        assert view.shape == (lv.size, 2) and view.data_ptr() == enc.level_table(lvl).data_ptr()
    arrays = level_arrays(levels)
    assert arrays.offset.tolist() == [lv.offset for lv in levels]
    assert arrays.size.tolist() == [lv.size for lv in levels]
    assert arrays.res.tolist() == [lv.resolution for lv in levels]
    assert arrays.dense.tolist() == [lv.dense for lv in levels]
    assert arrays.scale.dtype == np.float32


def test_backend_and_input_errors() -> None:
    with pytest.raises(ValueError, match="unknown hash-grid backend"):
        HashGridEncoding(SMALL, backend="cuda")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        grid_kernels(3)
    x = torch.rand(4, 3)
    with pytest.raises(TypeError, match="flat float32"):
        check_numba_inputs(torch.zeros(8, dtype=torch.float64), x)
    with pytest.raises(TypeError, match="flat float32"):
        check_numba_inputs(torch.zeros(4, 2), x)
    check_numba_inputs(torch.zeros(8), x)
    with pytest.raises(ValueError, match="expected positions"):
        _encoding(SMALL)(torch.rand(4, 2))
