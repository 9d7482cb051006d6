"""The SH rest of grid scenes as a palette or a residual VQ (``splatpack.codecs.grid.palette``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from grid_scenes import (
    raster_order,
    same,
)

from splatpack.codecs.grid import (
    AttributeCoding,
    GridCodecConfig,
    encode_grid_scene,
    grid_attribute_bytes,
    read_grid_scene,
    write_grid_scene,
)
from splatpack.codecs.grid.palette import fit_palette, fit_residual_palette
from splatpack.compress.quantise import channel_step, dequantise_channels
from splatpack.compress.rvq import ResidualVQ, ResidualVQConfig
from splatpack.core.errors import SplatpackError
from splatpack.spk.container import SpkReader, write_spk


def test_palette_mode(scene, grid, tmp):
    cfg = GridCodecConfig(sh_mode="palette", palette_size=24, palette_iterations=8)
    sections, meta = encode_grid_scene(scene, cfg, grid_index=grid)
    names = [s.name for s in sections]
    assert "grid.shN.labels" in names and "grid.shN.centroids" in names and "grid.shN" not in names
    e = meta["attributes"]["shN"]
    assert e["mode"] == "palette" and e["size"] == 24 and e["label_bits"] == 5
    path = tmp / "palette.spk"
    write_spk(path, sections, meta, len(scene))
    dec = read_grid_scene(path)
    rows = dec.shN.reshape(len(dec), -1)
    assert len(torch.unique(rows, dim=0)) <= 24
    # each row is the palette entry nearest to the input (among the decoded entries)
    ref = scene.subset(raster_order(grid)).shN.reshape(len(dec), -1)
    palette = torch.unique(rows, dim=0)
    nearest = palette[torch.cdist(ref, palette).argmin(1)]
    assert torch.allclose((ref - rows).norm(dim=1), (ref - nearest).norm(dim=1), atol=1e-5)
    assert float((ref - rows).norm(dim=1).mean()) < 0.5 * float((ref - ref.mean(0)).norm(dim=1).mean())
    grid_bytes = grid_attribute_bytes(encode_grid_scene(scene, GridCodecConfig(), grid_index=grid)[0])["shN"]
    assert grid_attribute_bytes(sections)["shN"] < grid_bytes
    assert same(dec, read_grid_scene(path))


@pytest.mark.parametrize("codec", ["webp", "ans", "png"])
def test_palette_with_other_codecs(scene, grid, tmp, codec):
    cfg = GridCodecConfig(
        shN=AttributeCoding(5, codec), sh_mode="palette", palette_size=300, palette_bits=10, palette_iterations=2
    )
    path = tmp / f"palette-{codec}.spk"
    write_grid_scene(path, scene, cfg, grid_index=grid)
    dec = read_grid_scene(path)
    assert SpkReader(path).meta["attributes"]["shN"]["label_bits"] == 9  # 300 entries: 16-bit labels
    assert dec.shN.shape == scene.shN.shape


def test_rvq_mode(scene, grid, tmp):
    """SH rest as a residual VQ: S label planes + S stacked codebooks; each row decodes to
    Σ_s Ĉ_s[k_s] with the labels chosen greedily against the quantised codebooks."""
    cfg = GridCodecConfig(sh_mode="rvq", rvq_stages=2, rvq_size=8, palette_iterations=8)
    sections, meta = encode_grid_scene(scene, cfg, grid_index=grid)
    e = meta["attributes"]["shN"]
    assert e["mode"] == "rvq" and e["stages"] == 2 and e["size"] == 8 and e["label_bits"] == 3
    assert len(e["lo"]) == len(e["hi"]) == 2 * 3 * (scene.shN.shape[1])
    path = tmp / "rvq.spk"
    write_spk(path, sections, meta, len(scene))
    dec = read_grid_scene(path)
    assert same(dec, read_grid_scene(path))
    ref = scene.subset(raster_order(grid)).shN.reshape(len(dec), -1)
    rows = dec.shN.reshape(len(dec), -1)
    assert 8 < len(torch.unique(rows, dim=0)) <= 64  # more distinct rows than one stage's codes
    # two stages of 8 codes beat a palette of 8
    err = float((ref - rows).norm(dim=1).mean())
    pal = read_grid_scene(
        _written(tmp, scene, grid, GridCodecConfig(sh_mode="palette", palette_size=8, palette_iterations=8))
    )
    pal_err = float((ref - pal.shN.reshape(len(pal), -1)).norm(dim=1).mean())
    assert err < 0.85 * pal_err, (err, pal_err)
    # given codebooks (training's) are what the file stores, up to their quantisation
    vq = ResidualVQ(ref.shape[1], ResidualVQConfig(num_stages=2, codebook_size=8))
    vq.init_kmeans(ref * 1.5, torch.Generator().manual_seed(5))  # not what the codec would fit
    given = vq.codebooks()
    sections, meta = encode_grid_scene(scene, cfg, grid_index=grid, shn_codebooks=given)
    _, cq, lo, hi = fit_residual_palette(ref.numpy(), cfg, given)
    for st_ in range(2):
        stored = torch.from_numpy(dequantise_channels(cq[st_], lo[st_], hi[st_], cfg.palette_bits))
        step = torch.from_numpy(channel_step(lo[st_], hi[st_], cfg.palette_bits))
        d = torch.cdist(given[st_], stored).argmin(1)
        assert torch.all((stored[d] - given[st_]).abs() <= step / 2 + 1e-6)
    with pytest.raises(SplatpackError, match="R-VQ codebooks"):
        encode_grid_scene(scene, cfg, grid_index=grid, shn_codebooks=given[:, :, :4])


def _written(tmp, scene, grid, cfg):
    path = tmp / "tmp-written.spk"
    write_grid_scene(path, scene, cfg, grid_index=grid)
    return path


def test_given_codebooks_larger_than_the_scene(scene, grid, tmp_path):
    """Trained R-VQ codebooks with more codes than Gaussians (a tiny scene) would make a file its
    readers refuse (k ≤ N a stage): the encoder fits codebooks of N codes instead."""
    books = torch.randn(2, 2 * len(scene), scene.shN[0].numel(), generator=torch.Generator().manual_seed(0))
    cfg = GridCodecConfig.from_quality(3, sh_mode="rvq")
    write_grid_scene(tmp_path / "k.spk", scene, cfg, grid_index=grid, shn_codebooks=books)
    dec = read_grid_scene(tmp_path / "k.spk")
    assert SpkReader(tmp_path / "k.spk").meta["attributes"]["shN"]["size"] <= len(scene) == len(dec)
    ref = scene.subset(raster_order(grid)).shN
    assert float((dec.shN - ref).abs().max()) < 0.05 * float(ref.abs().max())  # N codes: near exact


def test_a_palette_on_fixed_labels_keeps_them_and_codes_each_labels_mean():
    """The lattice refinement trained on (lo, hi, labels): every row keeps its label (renumbered
    along the centroids' principal axis, unused labels dropped), each centroid is its rows' mean
    quantised over (lo, hi), and a lattice of the wrong shape or labels is refused."""
    rng = np.random.default_rng(0)
    cfg = GridCodecConfig(sh_mode="palette", palette_size=8, palette_bits=6)
    labels = rng.choice([0, 2, 5, 7], size=40)  # labels 1, 3, 4 and 6 unused
    t = rng.normal(size=(40, 9))
    lo, hi = np.full(9, -3.0, np.float32), np.full(9, 3.0, np.float32)
    got, q, qlo, hi_out = fit_palette(t, cfg, (lo, hi, labels))
    assert q.shape == (4, 9) and np.array_equal(qlo, lo) and np.array_equal(hi_out, hi)
    for old in (0, 2, 5, 7):  # one new label per old one, shared by exactly its rows
        assert len(set(got[labels == old])) == 1
    assert len(set(got)) == 4
    decoded = dequantise_channels(q, lo, hi, 6)[got]
    means = np.stack([t[labels == label].mean(0) for label in labels])
    assert np.abs(decoded - means).max() <= channel_step(lo, hi, 6).max() / 2 + 1e-6
    with pytest.raises(SplatpackError, match="shapes"):
        fit_palette(t, cfg, (lo, hi, labels[:-1]))
    with pytest.raises(SplatpackError, match=r"outside 0\.\.7"):
        fit_palette(t, cfg, (lo, hi, labels + 1))
