"""Hash-grid encoding (tcnn semantics) and the Compact-3DGS colour field."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from splatpack.compress.colour_field import ColourField, ColourFieldConfig, contract_to_unisphere
from splatpack.compress.hash_grid import (
    PRIME_Y,
    PRIME_Z,
    HashGridConfig,
    HashGridEncoding,
    grid_levels,
    hash_encode_numba,
    hash_encode_reference,
    hash_encode_torch,
)
from splatpack.core.sh import eval_sh_bases

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


@pytest.mark.slow  # only compiles another specialisation (F = 4, ~6 s without the numba cache)
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
    from splatpack.compress import hash_grid

    one_level = HashGridConfig(n_levels=1, log2_hashmap_size=10, base_resolution=32)
    for cfg in (SMALL, one_level):
        enc = _encoding(cfg, seed=9)
        x = _points(1500, seed=9)
        g_out = torch.randn(x.shape[0], cfg.n_output_dims, generator=torch.Generator().manual_seed(9))
        y_serial = enc(x)
        (g_serial,) = torch.autograd.grad(enc(x), [enc.params], g_out)
        monkeypatch.setattr(hash_grid, "_SERIAL_BELOW", 0)
        y_par = enc(x)
        (g_par,) = torch.autograd.grad(enc(x), [enc.params], g_out)
        monkeypatch.setattr(hash_grid, "_SERIAL_BELOW", 1 << 18)
        assert torch.equal(y_serial, y_par)
        assert torch.equal(g_serial, g_par)


# ------------------------------------------------------------------------------------------
# colour field
# ------------------------------------------------------------------------------------------


def test_contraction_inside_and_outside_the_box() -> None:
    lo, hi = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([2.0, 4.0, 2.0])
    pts = torch.tensor(
        [
            [1.0, 2.0, 1.0],  # centre → 0.5
            [2.0, 2.0, 1.0],  # box face, ‖x‖ = 1 → 0.75 (not contracted)
            [0.5, 1.0, 1.5],  # inside: linear map (−0.5, −0.5, 0.5)/4 + 0.5
            [3.0, 2.0, 1.0],  # ‖x‖ = 2 → (2 − ½)·(1, 0, 0) → 1.5/4 + ½
            [1e7, 2.0, 1.0],  # far away → 1
            [1.0, -1e7, 1.0],  # far away → 0
        ]
    )
    out = contract_to_unisphere(pts, lo, hi)
    expected = torch.tensor(
        [
            [0.5, 0.5, 0.5],
            [0.75, 0.5, 0.5],
            [0.375, 0.375, 0.625],
            [0.875, 0.5, 0.5],
            [1.0, 0.5, 0.5],
            [0.5, 0.0, 0.5],
        ]
    )
    assert torch.allclose(out, expected, atol=1e-6)
    # continuity across the unit sphere and range of the whole map
    d = torch.nn.functional.normalize(torch.randn(100, 3), dim=-1)
    a = contract_to_unisphere((d * (1 - 1e-4) + 1) * torch.tensor([1.0, 2.0, 1.0]), lo, hi)
    b = contract_to_unisphere((d * (1 + 1e-4) + 1) * torch.tensor([1.0, 2.0, 1.0]), lo, hi)
    assert torch.allclose(a, b, atol=1e-4)
    far = contract_to_unisphere(torch.randn(1000, 3) * 100, lo, hi)
    assert bool(((far >= 0) & (far <= 1)).all())


def _small_field(**kw) -> ColourField:
    cfg = ColourFieldConfig(grid=HashGridConfig(log2_hashmap_size=12), **kw)
    torch.manual_seed(0)
    return ColourField(cfg, aabb_min=(-1.0, -1.0, -1.0), aabb_max=(1.0, 1.0, 1.0))


def test_field_gradients_reach_table_and_mlp_not_means() -> None:
    fld = _small_field()
    with torch.no_grad():
        fld.hash_params.uniform_(-0.1, 0.1)
    means = (torch.rand(400, 3) * 2.4 - 1.2).requires_grad_(True)  # some outside the box
    dirs = ColourField.view_dirs(means, torch.tensor([0.0, 0.0, 4.0]))
    out = fld(means, dirs)
    assert out.shape == (400, 3) and out.dtype == torch.float32
    (out * torch.randn_like(out)).sum().backward()
    assert means.grad is None
    assert fld.hash_params.grad is not None and float(fld.hash_params.grad.abs().sum()) > 0
    for w, b in fld.mlp_weights():
        assert w.grad is not None and float(w.grad.abs().sum()) > 0
        assert b.grad is not None and float(b.grad.abs().sum()) > 0


def test_fused_cpu_mlp_matches_sequential() -> None:
    fld = _small_field()
    with torch.no_grad():
        fld.hash_params.uniform_(-0.5, 0.5)
    means = torch.rand(300, 3) * 2 - 1
    dirs = torch.nn.functional.normalize(torch.randn(300, 3), dim=-1)
    g_out = torch.randn(300, 3)
    params = [fld.hash_params] + [t for wb in fld.mlp_weights() for t in wb]

    out = fld(means, dirs)
    grads = torch.autograd.grad(out, params, g_out)
    x = contract_to_unisphere(means, fld.aabb_min, fld.aabb_max)
    ref = fld.mlp(torch.cat([fld.encoding(x), eval_sh_bases(3, dirs)], dim=-1))
    ref_grads = torch.autograd.grad(ref, params, g_out)
    assert torch.allclose(out, ref, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-5 * (1 + float(b.abs().max())))


def test_export_round_trip() -> None:
    fld = _small_field()
    with torch.no_grad():
        fld.hash_params.uniform_(-0.5, 0.5)
    means = torch.rand(100, 3) * 2 - 1
    cam = torch.tensor([0.3, -0.2, 3.0])
    state = fld.state_for_export()
    assert set(state) == {"config", "aabb_min", "aabb_max", "hash_params", "mlp"}
    assert [tuple(w.shape) for w, _ in state["mlp"]] == [(64, 48), (64, 64), (3, 64)]
    same = ColourField.from_export(state)
    assert torch.equal(same.colours(means, cam), fld.colours(means, cam))
    # a decoder's arrays: numpy, float16 table
    rebuilt = ColourField.from_arrays(
        ColourFieldConfig.from_dict(state["config"]),
        state["aabb_min"].numpy(),
        state["aabb_max"].numpy(),
        state["hash_params"].half().numpy(),
        [(w.numpy(), b.numpy()) for w, b in state["mlp"]],
    )
    assert torch.allclose(rebuilt.colours(means, cam), fld.colours(means, cam), atol=1e-2)
    with pytest.raises(ValueError):
        ColourField.from_arrays(same.cfg, state["aabb_min"], state["aabb_max"], state["hash_params"][:-8], state["mlp"])


def test_field_fits_per_point_colours() -> None:
    """The field memorises a random colour per point (a constant or a smooth function cannot)."""
    torch.manual_seed(0)
    cfg = ColourFieldConfig(grid=HashGridConfig(log2_hashmap_size=14))
    fld = ColourField(cfg)
    n = 500
    means = torch.rand(n, 3) * 1.6 - 0.8
    dirs = ColourField.view_dirs(means, torch.tensor([0.0, 0.0, 3.0]))
    target = torch.rand(n, 3) * 2 - 1  # DC coefficients; best constant predictor: MSE ≈ 1/3
    opt = torch.optim.Adam(fld.parameters(), lr=1e-2, eps=1e-15)
    losses = []
    for _ in range(300):
        loss = torch.nn.functional.mse_loss(fld(means, dirs), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.25
    assert losses[-1] < 0.01, losses[::50]
