"""The CPU rasterizer against the slow autograd reference, and against gsplat's torch code."""

from __future__ import annotations

import math

import pytest
import torch

from splatpack.core.sh import eval_sh_bases, sh_to_color
from splatpack.render import project_gaussians, rasterize


def random_scene(n=300, seed=0, width=64, height=48, sh=False):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.6
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.15 + 0.02
    opacities = torch.rand(n, generator=g) * 0.9 + 0.05
    colors = torch.randn(n, 16, 3, generator=g) * 0.3 if sh else torch.rand(n, 3, generator=g)
    viewmat = torch.eye(4)
    viewmat[:3, :3] = torch.linalg.qr(torch.randn(3, 3, generator=g))[0] if seed else torch.eye(3)
    viewmat[2, 3] = 3.0
    K = torch.tensor([[60.0, 0, width / 2], [0, 60.0, height / 2], [0, 0, 1]])
    return [means, quats, scales, opacities, colors], viewmat, K, width, height


def _render_and_grads(params, viewmat, K, w, h, impl, dtype, sh_degree=None):
    ps = [p.clone().to(dtype).requires_grad_(True) for p in params]
    bg = torch.tensor([0.2, 0.3, 0.4], dtype=dtype)
    img, alpha, info = rasterize(
        *ps, viewmat.to(dtype), K.to(dtype), w, h, sh_degree=sh_degree, background=bg, backend="cpu", cpu_impl=impl
    )
    g = torch.Generator().manual_seed(123)
    w_img = torch.randn(img.shape, generator=g, dtype=torch.float64).to(dtype)
    w_alpha = torch.randn(alpha.shape, generator=g, dtype=torch.float64).to(dtype)
    ((img * w_img).sum() + (alpha * w_alpha).sum()).backward()
    return img.detach().double(), alpha.detach().double(), [p.grad.double() for p in ps], info


@pytest.mark.parametrize("seed,sh_degree", [(0, None), (1, None), (2, 3), (3, 1)])
def test_kernel_matches_dense_reference(seed, sh_degree):
    params, vm, K, w, h = random_scene(seed=seed, sh=sh_degree is not None)
    img_k, a_k, g_k, info = _render_and_grads(params, vm, K, w, h, "kernel", torch.float32, sh_degree)
    img_r, a_r, g_r, _ = _render_and_grads(params, vm, K, w, h, "dense", torch.float64, sh_degree)
    assert (info["radii"] > 0).all(-1).sum() > 100  # the scene really is on screen
    assert (img_k - img_r).abs().max() < 1e-4
    assert (a_k - a_r).abs().max() < 1e-4
    for name, gk, gr in zip(["means", "quats", "scales", "opacities", "colors"], g_k, g_r):
        rel = ((gk - gr).norm() / gr.norm()).item()
        assert rel < 1e-3, f"{name}: relative gradient error {rel:.2e}"


def test_torch_tiled_equals_dense():
    params, vm, K, w, h = random_scene(seed=4)
    img_t, a_t, g_t, _ = _render_and_grads(params, vm, K, w, h, "torch_tiled", torch.float64)
    img_r, a_r, g_r, _ = _render_and_grads(params, vm, K, w, h, "dense", torch.float64)
    assert torch.allclose(img_t, img_r, atol=1e-10) and torch.allclose(a_t, a_r, atol=1e-10)
    for gt, gr in zip(g_t, g_r):
        assert torch.allclose(gt, gr, atol=1e-8)


def test_kernel_is_deterministic_and_densification_grad_available():
    params, vm, K, w, h = random_scene(seed=5)
    a = _render_and_grads(params, vm, K, w, h, "kernel", torch.float32)
    b = _render_and_grads(params, vm, K, w, h, "kernel", torch.float32)
    assert torch.equal(a[0], b[0])
    for ga, gb in zip(a[2], b[2]):
        assert torch.equal(ga, gb)
    # densification reads info["means2d"].grad (gsplat's DefaultStrategy)
    ps = [p.clone().requires_grad_(True) for p in params]
    img, alpha, info = rasterize(*ps, vm, K, w, h, backend="cpu")
    info["means2d"].retain_grad()
    img.sum().backward()
    assert info["means2d"].grad is not None and info["means2d"].grad.abs().sum() > 0


def test_early_termination_and_alpha_clamp():
    """A stack of opaque Gaussians: the pixel stops before T <= 1e-4 and alpha <= 0.999 (gsplat)."""
    n = 6
    means = torch.zeros(n, 3)
    means[:, 2] = torch.arange(n, dtype=torch.float32) * 0.1
    quats = torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1)
    scales = torch.full((n, 3), 0.5)
    opac = torch.full((n,), 0.999)
    colors = torch.eye(3).repeat(2, 1)
    vm = torch.eye(4)
    vm[2, 3] = 4.0
    K = torch.tensor([[30.0, 0, 8.5], [0, 30.0, 8.5], [0, 0, 1]])  # mean lands on a pixel centre
    img, alpha, _ = rasterize(means, quats, scales, opac, colors, vm, K, 16, 16, backend="cpu")
    ref, ref_alpha, _ = rasterize(means, quats, scales, opac, colors, vm, K, 16, 16, backend="cpu", cpu_impl="dense")
    centre = img[8, 8]
    # sigma = 0 there: alpha clamps to 0.999 (T = 1e-3); the second would take T to 1e-6, so the pixel stops
    assert torch.allclose(centre, torch.tensor([0.999, 0.0, 0.0]), atol=1e-5)
    assert torch.allclose(img, ref, atol=1e-5) and torch.allclose(alpha, ref_alpha, atol=1e-5)


def test_projection_matches_gsplat_torch_impl():
    gsplat_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    params, vm, K, w, h = random_scene(n=500, seed=6)
    means, quats, scales, opac, _ = params
    ours = project_gaussians(means, quats, scales, opac, vm, K, w, h)
    from splatpack.render.projection import covariance_3d

    radii, m2, depths, conics, _ = gsplat_impl._fully_fused_projection(
        means, covariance_3d(quats, scales), vm[None], K[None], w, h
    )
    vis = (radii[0] > 0).all(-1) & (ours.radii > 0).all(-1)
    assert vis.sum() > 100
    assert torch.allclose(ours.means2d[vis], m2[0][vis], atol=1e-4)
    assert torch.allclose(ours.conics[vis], conics[0][vis], rtol=1e-4, atol=1e-6)
    assert torch.allclose(ours.depths, depths[0], atol=1e-6)
    # our radius is opacity-aware: never larger than gsplat's 3.33-sigma one
    assert (ours.radii[vis] <= radii[0][vis]).all()


def test_sh_matches_gsplat_torch_impl():
    gsplat_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    g = torch.Generator().manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.randn(200, 3, generator=g), dim=-1)
    coeffs = torch.randn(200, 16, 3, generator=g)
    for degree in range(4):
        ref = gsplat_impl._spherical_harmonics(degree, dirs, coeffs)
        ours = (eval_sh_bases(degree, dirs).unsqueeze(-1) * coeffs[:, : (degree + 1) ** 2]).sum(-2)
        assert torch.allclose(ours, ref, atol=1e-5), degree
        assert torch.allclose(sh_to_color(degree, coeffs, dirs * 3.0), torch.clamp_min(ref + 0.5, 0), atol=1e-5)


def test_empty_and_offscreen_scenes_render_background():
    params, vm, K, w, h = random_scene(n=50, seed=7)
    means = params[0] + torch.tensor([0.0, 0.0, -10.0])  # all behind the camera
    bg = torch.tensor([1.0, 1.0, 1.0])
    img, alpha, info = rasterize(means, *params[1:], vm, K, w, h, background=bg, backend="cpu")
    assert (info["radii"] == 0).all()
    assert torch.equal(img, torch.ones(h, w, 3)) and torch.equal(alpha, torch.zeros(h, w))
    empty = [p[:0] for p in params]
    img, alpha, _ = rasterize(*empty, vm, K, w, h, background=bg, backend="cpu")
    assert torch.equal(img, torch.ones(h, w, 3))


def test_fov_focal():
    from splatpack.render.projection import fov_to_focal

    assert math.isclose(fov_to_focal(2 * math.atan(0.5), 100), 100.0)


def test_backend_selection_without_cuda():
    from splatpack.core.errors import SplatpackError
    from splatpack.render import cuda_available, resolve_backend

    if cuda_available():
        pytest.skip("a CUDA device is present")
    assert resolve_backend("auto") == "cpu" and resolve_backend("cpu") == "cpu"
    with pytest.raises(SplatpackError, match="no CUDA device"):
        resolve_backend("cuda")


def test_rgb_plus_extra_channels_are_composited_in_groups():
    """Colours wider than the kernel's 3 channels run in groups; each channel equals its own render."""
    params, vm, K, w, h = random_scene(n=120, seed=8)
    g = torch.Generator().manual_seed(0)
    feats = torch.rand(120, 5, generator=g)
    bg5 = torch.rand(5, generator=g)
    ps = [p.clone().requires_grad_(True) for p in params[:4]] + [feats.clone().requires_grad_(True)]
    img5, a5, _ = rasterize(*ps, vm, K, w, h, background=bg5, backend="cpu")
    ref5, ra5, _ = rasterize(
        *[p.detach().double() for p in ps],
        vm.double(),
        K.double(),
        w,
        h,
        background=bg5.double(),
        backend="cpu",
        cpu_impl="dense",
    )
    assert img5.shape == (h, w, 5) and (img5.double() - ref5).abs().max() < 1e-4
    wts = torch.randn(h, w, 5, generator=g)
    (img5 * wts).sum().backward()
    qs = [p.detach().double().requires_grad_(True) for p in ps]
    out, _, _ = rasterize(*qs, vm.double(), K.double(), w, h, background=bg5.double(), backend="cpu", cpu_impl="dense")
    (out * wts.double()).sum().backward()
    for p, q in zip(ps, qs):
        assert ((p.grad.double() - q.grad).norm() / q.grad.norm()) < 1e-3
