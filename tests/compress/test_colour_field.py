"""The Compact-3DGS colour field: contraction, gradients, fused MLP, export, fitting."""

from __future__ import annotations

import pytest
import torch

from splatpack.compress.colour_field import ColourField, ColourFieldConfig, contract_to_unisphere
from splatpack.compress.hash_grid import HashGridConfig
from splatpack.core.sh import eval_sh_bases

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
