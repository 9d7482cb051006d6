"""Quantisation-aware training for grid scenes (``splatpack.codecs.grid.qat``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from grid_scenes import (
    raster_order,
)

from splatpack.codecs.grid import GridCodecConfig, quantisation_aware, read_grid_scene, write_grid_scene
from splatpack.codecs.grid.config import resolved_low_bits


@pytest.mark.parametrize("quality, kw", [(3, {}), (6, {"opacity_space": "alpha"}), ("sog", {})])
def test_quantisation_aware_matches_the_decoder(scene, grid, tmp, quality, kw):
    """Training's straight-through quantisation renders what the file will decode to."""
    cfg = GridCodecConfig.from_quality(quality, **kw)
    if cfg.frames == "best":  # training renders one frame choice (the trainer picks "turned")
        cfg.frames = "canonical" if quality == 6 else "turned"
    path = tmp / "qat.spk"
    write_grid_scene(path, scene, cfg, grid_index=grid)
    dec = read_grid_scene(path)
    order = raster_order(grid)
    params = [getattr(scene, k).clone().requires_grad_(True) for k in ("means", "quats", "scales", "opacities", "sh0")]
    means, quats, scales, opac, sh0 = quantisation_aware(*params, cfg)
    close = lambda a, b: torch.allclose(a[order].float(), b.float(), atol=1e-5, rtol=1e-5)
    assert close(means, dec.means) and close(scales, dec.scales) and close(sh0, dec.sh0)
    assert (
        close(opac, dec.opacities)
        if cfg.opacity_space == "logit"
        else close(torch.sigmoid(opac), torch.sigmoid(dec.opacities))
    )
    q_dec = torch.nn.functional.normalize(dec.quats, dim=-1)
    q_qat = torch.nn.functional.normalize(quats[order], dim=-1)
    assert torch.allclose((q_qat * q_dec).sum(1).abs(), torch.ones(len(dec)), atol=1e-5)  # same rotation
    assert not torch.equal(means, scene.means)  # it did quantise
    (means.sum() + quats.sum() + scales.sum() + opac.sum() + sh0.sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    assert torch.equal(params[2].grad, torch.ones_like(scene.scales))  # straight through


def test_quantisation_aware_renders_the_dropped_bits(scene, grid, tmp):
    """With per-Gaussian drops, training renders each Gaussian at the precision the file keeps:
    the middle of the steps it dropped, as the decoder puts it."""
    cfg = GridCodecConfig.from_quality(6, frames="turned", drop_fraction=0.4)
    rng = np.random.default_rng(0)
    n = len(scene)
    drops = {
        a: rng.integers(0, resolved_low_bits(a, getattr(cfg, a), cfg) + 1, n).astype(np.uint8)
        for a in ("means", "scales", "quats")
    }
    assert all(resolved_low_bits(a, getattr(cfg, a), cfg) >= 2 for a in drops)  # something to drop
    path = tmp / "drops.spk"
    write_grid_scene(path, scene, cfg, grid_index=grid, drops=drops)
    dec = read_grid_scene(path)
    order = raster_order(grid)
    params = [getattr(scene, k).clone() for k in ("means", "quats", "scales", "opacities", "sh0")]
    torch_drops = {a: torch.from_numpy(k) for a, k in drops.items()}
    means, quats, scales, _, _ = quantisation_aware(*params, cfg, torch_drops)
    close = lambda a, b: torch.allclose(a[order].float(), b.float(), atol=1e-5, rtol=1e-5)
    assert close(means, dec.means) and close(scales, dec.scales)
    q_dec = torch.nn.functional.normalize(dec.quats, dim=-1)
    q_qat = torch.nn.functional.normalize(quats[order], dim=-1)
    assert torch.allclose((q_qat * q_dec).sum(1).abs(), torch.ones(len(dec)), atol=1e-5)
    full = quantisation_aware(*params, cfg)[0]
    dropped = torch.from_numpy(drops["means"] > 0)
    assert not torch.allclose(full[dropped], means[dropped])  # the dropped ones are coarser
    assert torch.equal(full[~dropped], means[~dropped])  # the others as before


def test_lattice_inputs_are_coded_exactly_and_training_renders_them_so(scene, grid, tmp):
    """Colours and log-scales on a coarse lattice (a quantised file's codes) decode exactly, and
    quantisation-aware training on the file's fixed ranges renders what the file decodes to."""
    import dataclasses

    from splatpack.codecs.grid.encode import lattice_ranges

    rng = np.random.default_rng(2)
    n = len(scene)
    sh0 = torch.from_numpy((rng.integers(0, 100, (n, 1, 3)) * 0.02 - 1.0).astype(np.float32))
    scales = torch.from_numpy((rng.integers(0, 90, (n, 3)) / 16.0 - 8.0).astype(np.float32))
    lattice = dataclasses.replace(scene, sh0=sh0, scales=scales)
    cfg = GridCodecConfig.from_quality(6, frames="turned")  # 7 bits: 127 steps cover 100 and 90
    ranges = lattice_ranges(lattice, cfg)
    assert {"sh0", "scales"} <= set(ranges)
    path = tmp / "lattice.spk"
    write_grid_scene(path, lattice, cfg, grid_index=grid, ranges=ranges)
    dec = read_grid_scene(path)
    order = raster_order(grid)
    assert torch.allclose(dec.sh0, sh0[order], atol=1e-5)  # exact: on the lattice's own step
    params = [getattr(lattice, k).clone() for k in ("means", "quats", "scales", "opacities", "sh0")]
    means, quats, scales_q, opac, sh0_q = quantisation_aware(*params, cfg, None, ranges)
    close = lambda a, b: torch.allclose(a[order].float(), b.float(), atol=1e-5, rtol=1e-5)
    assert close(sh0_q, dec.sh0) and close(scales_q, dec.scales) and close(means, dec.means)
    moved = [p + 0.013 for p in params]  # off the lattice (training moved them): still the file's grid
    write_grid_scene(path, dataclasses.replace(lattice, sh0=moved[4], scales=moved[2]), cfg, grid, ranges=ranges)
    dec = read_grid_scene(path)
    _, _, scales_q, _, sh0_q = quantisation_aware(*moved, cfg, None, ranges)
    assert close(sh0_q, dec.sh0) and close(scales_q, dec.scales)
