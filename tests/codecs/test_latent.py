"""Latent-mode coding under the generative model (:mod:`splatpack.codecs.latent`): decoded
values within half a ladder step of the input in every channel (predicted or not), the ladder
setting the step, the SH rest always on the fallback, the latents alone decoding to the model's
reconstruction, the grid shape rule, and one-line refusals of damaged files and of files coded
with a model this splatpack does not have."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from generative_objects import tiny_model_config
from grid_scenes import smooth_scene

from splatpack.apps import cli
from splatpack.apps.commands.view import browser_readable
from splatpack.codecs import latent
from splatpack.codecs.latent import (
    LATENT_SCENE_CODEC,
    LatentCodecConfig,
    latent_grid_shape,
    latent_prediction,
    residual_section,
)
from splatpack.codecs.registry import read_gaussians
from splatpack.core import SplatpackError
from splatpack.formats import load_scene
from splatpack.generative.grids import ChannelStats, object_frame, sorted_grid, to_object_frame
from splatpack.generative.model import GenerativeModel
from splatpack.spk.container import Section, SpkReader, write_spk


@pytest.fixture(scope="module")
def scene():
    return smooth_scene(300, degree=1)


def _input_cells(gs) -> tuple[torch.Tensor, np.ndarray]:
    """The encoder's grid of ``gs`` (object frame) and its occupied rows in raster order."""
    h, w = latent_grid_shape(len(gs), 8)
    grid, index = sorted_grid(to_object_frame(gs, object_frame(gs)), (h, w), gs.sh_degree, 0)
    return grid, index.reshape(-1)


def _object_cells(gs) -> torch.Tensor:
    """[N, C] of decoded Gaussians in the input's object frame (the grid's channel order; they
    are the encoder's canonical Gaussians already)."""
    g = gs
    return torch.cat(
        [
            g.means,
            g.scales,
            g.quats,
            g.opacities[:, None],
            g.sh0.reshape(-1, 3),
            g.shN.transpose(1, 2).reshape(len(g), -1),
        ],
        1,
    ).double()


def test_decoded_values_are_within_half_a_step_in_every_channel(scene, tmp_path):
    path = tmp_path / "s.spk"
    enc = LATENT_SCENE_CODEC.encode(scene, LatentCodecConfig(quality=3))
    enc.write(path)
    decoded = load_scene(path)
    grid, index = _input_cells(scene)
    want = grid.reshape(grid.shape[0], -1).T[index >= 0].double()
    got = _object_cells(to_object_frame(decoded, object_frame(scene)))
    channels = enc.meta["channels"]
    assert len(channels) == 14 + 9 and not any(c["predicted"] for c in channels[14:])  # SH rest: fallback
    for c, entry in enumerate(channels):
        if 6 <= c < 10:
            continue  # quaternions are renormalised after decoding
        err = float((got[:, c] - want[:, c]).abs().max())
        assert err <= entry["step"] / 2 * (1 + 1e-3) + 1e-5, (c, err, entry)
    angle = 2 * torch.acos(
        (got[:, 6:10] * torch.nn.functional.normalize(want[:, 6:10], dim=1)).sum(1).abs().clamp(max=1)
    )
    assert float(angle.max()) < 0.1


def test_the_ladder_sets_the_steps_and_the_size(scene):
    low = LATENT_SCENE_CODEC.encode(scene, LatentCodecConfig(quality=0))
    high = LATENT_SCENE_CODEC.encode(scene, LatentCodecConfig(quality="high"))
    size = lambda e: sum(len(s.payload) for s in e.sections)
    assert size(low) < size(high)
    for a, b in zip(low.meta["channels"], high.meta["channels"]):
        assert b["step"] <= a["step"]
    assert high.meta["quality"] == 8
    with pytest.raises(SplatpackError, match="quality"):
        LATENT_SCENE_CODEC.encode(scene, LatentCodecConfig(quality="sog"))


def test_latents_alone_decode_to_the_models_reconstruction(scene, tmp_path):
    path = tmp_path / "z.spk"
    enc = LATENT_SCENE_CODEC.encode(scene, LatentCodecConfig(residual=False))
    enc.write(path)
    names = {s.name for s in enc.sections}
    assert len(names & {"latent.bits", "latent.ans"}) == 1 and not names & {residual_section(c) for c in range(14)}
    assert {residual_section(c) for c in range(14, 23)} <= names  # the SH rest the model lacks
    assert residual_section(14) == "latent.shN.14"
    grid, index = _input_cells(scene)
    model = latent.load_generative_model(latent.SHIPPED_MODEL)
    pred = latent_prediction(model, grid[:14].double().numpy()).reshape(14, -1).T[index >= 0]
    got = _object_cells(to_object_frame(read_gaussians(path), object_frame(scene)))
    keep = [c for c in range(14) if not 6 <= c < 10]
    np.testing.assert_allclose(got[:, keep].numpy(), pred[:, keep], atol=1e-4)


@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000, 10_000, 123_457])
def test_grid_shape_holds_every_gaussian_in_sides_of_the_factor(n):
    h, w = latent_grid_shape(n, 8)
    assert h % 8 == 0 and w % 8 == 0 and n <= h * w
    assert h * w - n < 8 * max(h, w)  # fewer empty cells than one band of the factor


def _rewrite(src, dst, meta_change=None, drop=None, num_gaussians=None):
    with SpkReader(src) as r:
        sections = [Section(s.name, s.codec, bytes(r.read(s.name))) for s in r.sections if s.name != drop]
        meta, n = dict(r.meta), r.num_gaussians
    write_spk(
        dst, sections, meta={**meta, **(meta_change or {})}, num_gaussians=n if num_gaussians is None else num_gaussians
    )


def test_a_file_of_no_gaussians_is_refused(scene, tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        latent_grid_shape(0, 8)
    good, bad = tmp_path / "good.spk", tmp_path / "bad.spk"
    LATENT_SCENE_CODEC.encode(scene, LatentCodecConfig(quality=2)).write(good)
    _rewrite(good, bad, num_gaussians=0)
    with pytest.raises(SplatpackError, match="at least one Gaussian"):
        load_scene(bad)


def test_damaged_files_are_refused_in_one_line(scene, tmp_path, capsys):
    good = tmp_path / "good.spk"
    LATENT_SCENE_CODEC.encode(scene, LatentCodecConfig(quality=2)).write(good)
    cases = {
        "missing": {"drop": "latent.scales.3"},
        "must be": {"meta_change": {"grid": {"height": 8, "width": 8}}},
        "malformed latent-grid channel": {"meta_change": {"channels": [{"step": -1}] * 23}},
        "malformed latent-grid header": {"meta_change": {"frame": {"centre": [0, 0], "radius": 1}}},
    }
    for message, change in cases.items():
        bad = tmp_path / "bad.spk"
        _rewrite(good, bad, **change)
        with pytest.raises(SplatpackError, match=message):
            load_scene(bad)
    truncated = tmp_path / "cut.spk"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert cli.main(["export", str(truncated), "-o", str(tmp_path / "x.ply")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {truncated}") and err.count("\n") == 1


def test_a_file_coded_with_another_model_is_refused(scene, tmp_path, monkeypatch, capsys):
    path = tmp_path / "s.spk"
    LATENT_SCENE_CODEC.encode(scene, LatentCodecConfig(quality=2)).write(path)
    other = tmp_path / "weights"
    other.mkdir()
    monkeypatch.setattr(latent, "SHIPPED_MODEL", other / "objects10k.pt")
    with pytest.raises(SplatpackError, match="does not have"):
        load_scene(path)
    torch.manual_seed(0)
    cfg = dataclasses.replace(tiny_model_config())
    GenerativeModel.create(cfg, ChannelStats(torch.zeros(14), torch.ones(14))).save(other / "objects10k.pt")
    assert cli.main(["export", str(path), "-o", str(tmp_path / "x.ply")]) == 2
    err = capsys.readouterr().err
    assert "coded with generative model 'objects10k'" in err and "differs" in err and err.count("\n") == 1


def test_compress_latent_writes_a_file_the_viewer_is_served_as_a_grid_scene(scene, tmp_path, capsys):
    src = tmp_path / "in.ply"
    from splatpack.formats import save_scene

    save_scene(scene, src)
    out = tmp_path / "out.spk"
    assert cli.main(["compress", str(src), "-o", str(out), "--latent", "--quality", "4"]) == 0
    assert "latents and the residual at quality 4" in capsys.readouterr().out
    served_dir = tmp_path / "served"
    served_dir.mkdir()
    served = browser_readable(out, served_dir)
    with SpkReader(served) as r:
        assert r.meta["kind"] == "sog-grid"
    a, b = read_gaussians(out), read_gaussians(served)
    nearest = torch.cdist(a.means, b.means).min(1).values  # the grid scene re-sorts them
    assert len(a) == len(b) == 300 and float(nearest.max()) < 1e-3
    assert cli.main(["compress", str(src), "-o", str(out), "--latents-only"]) == 2
    assert "--latents-only takes --latent" in capsys.readouterr().err
    assert cli.main(["compress", str(src), "-o", str(out), "--latent", "--target-size", "1MB"]) == 2
    assert "--latent takes --quality" in capsys.readouterr().err


def test_latents_are_coded_under_the_models_latent_coder(tmp_path, monkeypatch):
    """A model with a latent coder codes the latents with it where that is smaller (here: sparse
    latents, 1 % ones, and a coder that predicts 1 %: 0.08 bits a bit against deflate's ~0.15);
    the file decodes to what packed latents give, and a damaged coded section is refused."""
    scene = smooth_scene(3000, degree=0)
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setattr(latent, "SHIPPED_MODEL", weights / "objects10k.pt")
    rng = np.random.default_rng(0)
    sparse = lambda model, grid: (rng.random(model.bae.latent_shape(*grid.shape[1:])) < 0.01).astype(np.uint8)
    monkeypatch.setattr(latent, "grid_latents", sparse)
    torch.manual_seed(0)
    model = GenerativeModel.create(tiny_model_config(), ChannelStats(torch.zeros(14), torch.ones(14)))
    with torch.no_grad():
        model.coder.head.weight.zero_()
        model.coder.head.bias.fill_(-4.6)
    model.save(weights / "objects10k.pt")
    model.coder = None
    model.config = dataclasses.replace(model.config, coder=None)
    model.save(weights / "plain.pt")
    files = {}
    for name in ("objects10k", "plain"):
        rng = np.random.default_rng(0)  # the same latents for both
        enc = LATENT_SCENE_CODEC.encode(scene, LatentCodecConfig(quality=2, model=weights / f"{name}.pt"))
        files[name] = tmp_path / f"{name}.spk"
        enc.write(files[name])
        names = {s.name for s in enc.sections}
        coded = name == "objects10k"
        assert ("latent.ans" in names, "latent.bits" in names) == (coded, not coded)
        assert (enc.meta["latent"].get("bits") == "coder") == coded
    a, b = read_gaussians(files["objects10k"]), read_gaussians(files["plain"])
    assert torch.equal(a.means, b.means) and torch.equal(a.sh0, b.sh0) and torch.equal(a.quats, b.quats)
    with SpkReader(files["objects10k"]) as r:
        assert len(r.read("latent.ans")) < len(SpkReader(files["plain"]).read("latent.bits"))
    bad = tmp_path / "bad.spk"
    _rewrite(files["objects10k"], bad, meta_change={"latent": {**enc_meta(files["objects10k"]), "static": {"0": 0}}})
    with pytest.raises(SplatpackError, match="static plane table"):
        load_scene(bad)
    _rewrite(files["objects10k"], bad, drop="latent.ans")
    with pytest.raises(SplatpackError, match=r"latent\.ans"):
        load_scene(bad)


def enc_meta(path) -> dict:
    with SpkReader(path) as r:
        return dict(r.meta["latent"])
