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
