"""``compress --refine`` (:mod:`splatpack.train.refine`): the orbit capture holds the original's
renders in memory on views other than the bench's, and a quantisation-aware self-distillation
brings the decoded scene's renders closer to the original's at the same quality level."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from grid_scenes import one_numba_thread, smooth_scene

from splatpack.apps.cli import main
from splatpack.captures.images import load_image
from splatpack.codecs.grid import GridCodecConfig, read_grid_scene, write_grid_scene
from splatpack.formats import save_scene
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras
from splatpack.spk.container import SpkReader
from splatpack.train.refine import orbit_capture, refine_and_compress


@pytest.fixture(scope="module")
def scene():
    return smooth_scene(n=400, degree=0)


def test_the_orbit_capture_holds_the_originals_renders_off_the_benchs_ring(scene):
    cap = orbit_capture(scene, views=6, size=32, test=2)
    assert len(cap.train) == 6 and len(cap.test) == 2
    poses, K = orbit_cameras(scene.means, 6, 32, 60.0, (30.0, 0.0, -30.0), np.pi / 6)
    expected = render_views(scene, poses, K, 32)
    for fr, img in zip(cap.train, expected):
        assert np.array_equal(load_image(fr), img.numpy()) and load_image(fr).dtype == np.float32
    bench, _ = orbit_cameras(scene.means, 32, 32, 60.0)
    eyes = np.array([f.camtoworld[:3, 3] for f in cap.frames])
    assert np.min(np.linalg.norm(eyes[:, None] - bench[None, :, :3, 3], axis=-1)) > 1e-3  # no bench view


def test_refining_pulls_the_decoded_renders_towards_the_originals(scene, tmp_path):
    """Distillation from ``original``: a copy whose colours were disturbed, refined against the
    original's renders, decodes closer to them than the disturbed copy coded as it is."""
    g = torch.Generator().manual_seed(1)
    disturbed = dataclasses.replace(scene, sh0=scene.sh0 + 0.03 * torch.randn(scene.sh0.shape, generator=g))
    cams = orbit_cameras(scene.means, 8, 64, 60.0)  # the bench's ring, not the refinement's
    reference = render_views(scene, *cams, 64)
    with one_numba_thread():
        write_grid_scene(tmp_path / "plain.spk", disturbed, GridCodecConfig.from_quality(6))
        metrics = refine_and_compress(
            disturbed, tmp_path / "refined.spk", 0, 6, backend="cpu", original=scene, steps=150
        )
    plain = mean_psnr_ssim(render_views(read_grid_scene(tmp_path / "plain.spk"), *cams, 64), reference)[0]
    refined = mean_psnr_ssim(render_views(read_grid_scene(tmp_path / "refined.spk"), *cams, 64), reference)[0]
    assert metrics["steps"] == 150 and metrics["size_bytes"] == (tmp_path / "refined.spk").stat().st_size
    assert refined > plain + 0.8, (plain, refined)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.spk", "refined.spk"]  # no run folder left
    with SpkReader(tmp_path / "refined.spk") as r:  # the level's coding: positions as curve keys
        assert r.meta["attributes"]["means"]["encoding"] == "curve-keys"


def test_refine_takes_a_quality_level_not_a_target(tmp_path, capsys):
    src = save_scene(smooth_scene(n=50, degree=0), tmp_path / "in.ply")
    assert main(["compress", str(src), "-o", str(tmp_path / "o.spk"), "--refine", "5", "--target-psnr", "40"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--refine takes --quality" in err


def test_refine_after_an_allocation_keeps_its_settings(tmp_path, capsys):
    """``--allocate --refine``: the allocation's file met the target; the refined file is coded
    with the same per-attribute settings (bits) and frames."""
    src = save_scene(smooth_scene(n=120, degree=1), tmp_path / "in.ply")
    out = tmp_path / "o.spk"
    args = ["compress", str(src), "-o", str(out), "--target-psnr", "30", "--allocate", "--refine", "1"]
    with one_numba_thread():
        assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "refined " in line and "means " in line
    with SpkReader(out) as r:
        attrs, frames = r.meta["attributes"], r.meta["frames"]
    said = {a: int(line.split(f"{a} ")[1].split("/")[0].split(",")[0]) for a in ("means", "sh0", "opacities")}
    assert all(attrs[a]["bits"] == b for a, b in said.items()) and frames in ("turned", "canonical")


@pytest.mark.parametrize("outcome", ["kept", "over-size", "worse"])
def test_refine_after_an_allocation_is_kept_only_where_it_keeps_the_target(tmp_path, capsys, monkeypatch, outcome):
    """``--allocate --refine``: a size target is allocated SIZE_GROWTH below the size; the refined
    file replaces the allocation's only if it is within the size and its PSNR on the target's
    views is at least the allocation's, else the allocation's file stays and the line says so."""
    import shutil

    import splatpack.apps.commands.compress as compress
    import splatpack.train.refine as refine

    asked, real = {}, compress.write_to_target
    src = save_scene(smooth_scene(n=120, degree=1), tmp_path / "in.ply")
    out = tmp_path / "o.spk"

    def spy(gs, target, path, *a, **kw):
        asked["size"] = target.size
        return real(gs, target, path, *a, **kw)

    def fake_refine(gs, path, seconds, quality, backend, console=None, original=None, codec=None):
        if outcome == "worse":  # a coarser file: lower PSNR
            write_grid_scene(path, gs, GridCodecConfig.from_quality(0))
        else:  # the allocation's own file: the same PSNR
            shutil.copy(out, path)
        size = 20_001 if outcome == "over-size" else path.stat().st_size
        return {"size_bytes": size, "steps": 3}

    monkeypatch.setattr(compress, "write_to_target", spy)
    monkeypatch.setattr(refine, "refine_and_compress", fake_refine)
    args = ["compress", str(src), "-o", str(out), "--target-size", "20000", "--allocate", "--refine", "1"]
    with one_numba_thread():
        assert main(args) == 0
    line = capsys.readouterr().out
    assert asked["size"] == int(20_000 * (1 - refine.SIZE_GROWTH))
    if outcome == "kept":
        assert "refined 3 steps in 1 s" in line
    elif outcome == "over-size":
        assert "not refined (refined it was 20,001 bytes" in line
    else:
        assert "not refined (refined it was" in line
    assert out.stat().st_size <= 20_000 and len(read_grid_scene(out)) == 120
    assert {p.name for p in tmp_path.iterdir()} == {"in.ply", "o.spk"}  # no refinement left behind


def test_refining_with_dropped_bits_writes_the_drops_it_trained_with(scene, tmp_path, monkeypatch):
    """``--refine --adaptive-precision``: the Gaussians that drop low bits are chosen by render
    sensitivity before the first step, rendered at that precision, and the file drops exactly
    those (not a new choice made on the refined scene)."""
    import splatpack.train.outputs as outputs
    from splatpack.codecs.grid.encode import scene_drops

    written = {}
    real = outputs.write_grid_scene

    def spy(path, gs, cfg, **kw):
        written.update(kw["drops"])
        return real(path, gs, cfg, **kw)

    monkeypatch.setattr(outputs, "write_grid_scene", spy)
    codec = GridCodecConfig.from_quality(6, frames="turned", drop_fraction=0.4)
    with one_numba_thread():
        refine_and_compress(scene, tmp_path / "r.spk", 0, 6, backend="cpu", steps=20, codec=codec)
    expected = scene_drops(scene, codec)
    assert set(written) == set(expected) == {"means", "scales", "quats"}
    for a, k in expected.items():
        assert written[a].dtype == np.uint8 and np.count_nonzero(written[a]) == round(0.4 * len(scene))
        assert np.mean((written[a] > 0) == (k > 0)) > 0.97, a  # chosen on the input scene
    with SpkReader(tmp_path / "r.spk") as r:
        assert r.meta["attributes"]["means"]["drop"] == 2 and r.has("grid.drop")  # one class plane


def test_refining_moves_fixed_point_positions_along_their_lattice(scene, tmp_path, monkeypatch):
    """Positions on SPZ's fixed-point lattice are coded linearly and exactly; refinement trains
    them (they move), renders them on that lattice's fixed range, and the file decodes to exactly
    the positions training rendered: every one on the input lattice (``linear`` in the file)."""
    import splatpack.train.outputs as outputs
    from splatpack.codecs.grid import quantisation_aware

    rng = np.random.default_rng(3)
    codes = rng.integers(0, 6001, (len(scene), 3))
    fixed = dataclasses.replace(scene, means=torch.from_numpy((codes * 2.0**-12 - 0.7).astype(np.float32)))
    written = {}
    real = outputs.write_grid_scene

    def spy(path, gs, cfg, **kw):
        written.update(gs=gs, cfg=cfg, ranges=kw["ranges"])
        return real(path, gs, cfg, **kw)

    monkeypatch.setattr(outputs, "write_grid_scene", spy)
    with one_numba_thread():
        refine_and_compress(fixed, tmp_path / "r.spk", 0, 6, backend="cpu", steps=15)
    with SpkReader(tmp_path / "r.spk") as r:
        assert r.meta["means_transform"] == "linear"
    trained, cfg = written["gs"], written["cfg"]
    assert "means" in written["ranges"] and not torch.equal(trained.means, fixed.means)  # trained, not frozen
    rendered = quantisation_aware(
        trained.means, trained.quats, trained.scales, trained.opacities, trained.sh0, cfg, None, written["ranges"]
    )[0]
    got = read_grid_scene(tmp_path / "r.spk").means
    # the decoder's order is the grid's: match each decoded position to the nearest rendered one
    d = (got.double()[:, None, :] - rendered.detach().double()[None, :, :]).abs().max(-1).values.min(1).values
    assert d.max() < 1e-6
    steps = (got.double().numpy() + 0.7) * 2.0**12
    assert np.abs(steps - np.rint(steps)).max() < 1e-3  # on the input's 2^-12 lattice


def _refined_with_writer_spy(scene, quality, codec, out, monkeypatch) -> dict:
    """Refine ``scene`` at ``quality`` with ``codec`` for 12 steps into ``out``; returns what the trainer handed
    the grid writer: the trained Gaussians (``gs``) and the lattice ranges (``ranges``)."""
    import splatpack.train.outputs as outputs

    written = {}
    real = outputs.write_grid_scene

    def spy(path, gs, cfg, **kw):
        written.update(gs=gs, ranges=kw["ranges"])
        return real(path, gs, cfg, **kw)

    monkeypatch.setattr(outputs, "write_grid_scene", spy)
    with one_numba_thread():
        refine_and_compress(scene, out, 0, quality, backend="cpu", steps=12, codec=codec)
    return written


def _decoded_in_trained_order(path, trained):
    """(the decoded scene, for each decoded Gaussian the index of the trained one at its
    position): the decoder's order is the grid's, so each is matched to the nearest position."""
    decoded = read_grid_scene(path)
    d = ((decoded.means.double()[:, None] - trained.means.detach().double()[None]) ** 2).sum(-1)
    match = d.argmin(1).numpy()
    assert len(set(match)) == len(trained)
    return decoded, match


def test_refining_a_basis_coded_sh_rest_trains_on_the_files_generator_and_lattice(tmp_path, monkeypatch):
    """``sh_mode="basis"``: the rank-r PCA generator and the coefficients' lattice are fitted at the
    first step; the SH rest is projected onto that subspace after every step (so it has rank r
    about its mean and moved inside it) and the file is coded on that generator and lattice: it
    decodes to the quantised SH rest training rendered."""
    from splatpack.compress.quantise import fake_quantise

    scene = smooth_scene(n=300, degree=2)  # 8 × 3 = 24 SH-rest dimensions
    codec = GridCodecConfig.from_quality(6, sh_mode="basis", basis_rank=4)
    written = _refined_with_writer_spy(scene, 6, codec, tmp_path / "r.spk", monkeypatch)
    n = len(scene)
    before = scene.shN.reshape(n, -1).double().numpy()
    trained = written["gs"]
    after = trained.shN.reshape(n, -1).double().numpy()
    s = np.linalg.svd(after - after.mean(0), compute_uv=False)
    assert s[4] < 1e-5 * s[0] and s[3] > 1e-2 * s[0]  # rank 4, not fewer
    assert np.linalg.svd(before - before.mean(0), compute_uv=False)[4] > 1e-2 * s[0]  # the input had more
    lo, hi, table = written["ranges"]["shN"]
    mean, basis = table[0].astype(np.float64), table[1:].T.astype(np.float64)
    assert np.abs(mean + (after - mean) @ basis @ basis.T - after).max() < 1e-5  # in the fitted subspace
    first = mean + (before - mean) @ basis @ basis.T
    assert np.abs(after - first).max() > 1e-4  # trained inside it, not only projected
    coefs = torch.from_numpy((after - mean) @ basis).float()
    rendered = mean + fake_quantise(coefs, codec.shN.bits, None, (lo, hi)).double().numpy() @ basis.T
    with SpkReader(tmp_path / "r.spk") as r:
        entry = r.meta["attributes"]["shN"]
    assert entry["mode"] == "basis" and entry["lo"] == lo.tolist() and entry["hi"] == hi.tolist()
    decoded, match = _decoded_in_trained_order(tmp_path / "r.spk", trained)
    assert np.abs(decoded.shN.reshape(n, -1).double().numpy() - rendered[match]).max() < 1e-4


def test_the_sh_rest_lattice_survives_a_checkpoint():
    from splatpack.train.config import GridTraining
    from splatpack.train.grid import GridHooks

    cfg = GridTraining(enabled=True, start=0, quantisation_aware=True, codec={"sh_mode": "basis", "basis_rank": 3})
    hooks = GridHooks(cfg, seed=0, qat_start=0)
    gs = smooth_scene(n=80, degree=1)
    params = gs.to_parameters()
    hooks.before_step(params, 0)
    lo, hi, table = hooks.ranges["shN"]
    assert table.shape == (4, 9) and lo.shape == hi.shape == (3,) and hooks.sh_basis[1].shape == (9, 3)
    restored = GridHooks(cfg, seed=0, qat_start=0)
    restored.load_state_dict(hooks.state_dict(), "cpu")
    assert all(np.array_equal(a, b) for a, b in zip(hooks.ranges["shN"], restored.ranges["shN"]))
    assert all(torch.equal(a, b) for a, b in zip(hooks.sh_basis, restored.sh_basis))
    hooks.renumbered()
    assert hooks.sh_basis is None and hooks.ranges is None  # fitted again on the renumbered Gaussians


def test_a_grid_coded_sh_rest_is_rendered_on_its_planes_lattice():
    """``sh_mode="grid"``: quantisation-aware rendering quantises the SH rest's 3(K−1) planes over
    their current ranges with ``shN.bits`` (at most 2^b values a channel), straight-through."""
    from splatpack.train.config import GridTraining
    from splatpack.train.grid import GridHooks

    cfg = GridTraining(enabled=True, start=0, quantisation_aware=True, codec={"sh_mode": "grid", "shN": {"bits": 3}})
    hooks = GridHooks(cfg, seed=0, qat_start=0)
    params = smooth_scene(n=200, degree=1).to_parameters()
    hooks.before_step(params, 0)
    out = hooks.render_params(dict(params.items()), 0)
    flat = out["shN"].reshape(200, -1)
    assert out["shN"].shape == params["shN"].shape and 1 < len(torch.unique(flat[:, 0])) <= 8
    assert torch.abs(out["shN"] - params["shN"]).max() > 0  # quantised, not passed through
    out["shN"].sum().backward()
    assert torch.equal(params["shN"].grad, torch.ones_like(params["shN"]))  # straight-through


def test_refine_takes_an_sh_basis_rank(tmp_path, capsys):
    """``--refine --sh-basis R``: refined with the SH rest in the rank-R subspace and written with it."""
    src = save_scene(smooth_scene(n=120, degree=2), tmp_path / "in.ply")
    out = tmp_path / "o.spk"
    with one_numba_thread():
        assert main(["compress", str(src), "-o", str(out), "--refine", "1", "--sh-basis", "5"]) == 0
    assert "refined " in capsys.readouterr().out
    with SpkReader(out) as r:
        assert r.meta["attributes"]["shN"]["mode"] == "basis" and r.meta["attributes"]["shN"]["rank"] == 5


@pytest.mark.parametrize(
    "quality, sh_mode, full_rate", [(6, None, True), (8, None, True), (2, None, True), (6, "rvq", False)]
)
def test_the_sh_rest_keeps_its_full_rate_where_it_is_rendered_as_coded(
    tmp_path, monkeypatch, quality, sh_mode, full_rate
):
    """A basis (levels 5–7), planes (8–10) or a palette (0–4) render the SH rest as the file codes
    it and train it at its full 3DGS rate; an R-VQ is not rendered as coded and keeps 1 % like the rest."""
    import splatpack.train.refine as refine
    from splatpack.train.config import LearningRates

    class Stop(Exception):
        pass

    def trainer(capture, cfg, out, **kw):
        raise Stop(cfg.lr)

    monkeypatch.setattr(refine, "Trainer", trainer)
    with pytest.raises(Stop) as stop:
        codec = None if sh_mode is None else GridCodecConfig.from_quality(quality, sh_mode=sh_mode)
        refine.refine_and_compress(smooth_scene(n=60, degree=1), tmp_path / "r.spk", 0, quality, steps=1, codec=codec)
    lr, full = stop.value.args[0], LearningRates()
    assert lr.sh0 == pytest.approx(full.sh0 * refine.LR_SCALE)
    assert lr.shN == pytest.approx(full.shN * (refine.SH_REST_LR_SCALE if full_rate else refine.LR_SCALE))


def test_zeroed_sh_rests_stay_zero_through_refinement_and_the_file(tmp_path):
    """Gaussians whose SH rest is zero when the lattice is fitted (``zeroed_sh_rest``) are left out
    of the generator's fit, projected and rendered as zero every step, carried in a checkpoint,
    and the refined file stores them in its zero mask."""
    from splatpack.compress.sh_basis import zeroed_sh_rest
    from splatpack.train.config import GridTraining
    from splatpack.train.grid import GridHooks

    gs = zeroed_sh_rest(smooth_scene(n=120, degree=2), 0.25)
    zero = ~gs.shN.reshape(len(gs), -1).bool().any(1)
    assert int(zero.sum()) == 30
    cfg = GridTraining(enabled=True, start=0, quantisation_aware=True, codec={"sh_mode": "basis", "basis_rank": 4})
    hooks = GridHooks(cfg, seed=0, qat_start=0)
    params = gs.to_parameters()
    hooks.before_step(params, 0)
    assert torch.equal(hooks.sh_zero, zero)
    rendered = hooks.render_params(dict(params), 0)["shN"]
    assert rendered[zero].abs().max() == 0 and rendered[~zero].abs().max() > 0
    with torch.no_grad():
        params["shN"].add_(0.01)  # an optimiser step moves every row
    hooks.after_step(params, 0, None)
    assert params["shN"][zero].abs().max() == 0 and params["shN"][~zero].abs().max() > 0
    restored = GridHooks(cfg, seed=0, qat_start=0)
    restored.load_state_dict(hooks.state_dict(), "cpu")
    assert torch.equal(restored.sh_zero, zero)
    hooks.removed(torch.arange(len(gs)) < 10)
    assert torch.equal(hooks.sh_zero, zero[10:])
    codec = GridCodecConfig.from_quality(6, sh_mode="basis", basis_rank=4)
    with one_numba_thread():
        refine_and_compress(gs, tmp_path / "r.spk", 0, 6, backend="cpu", steps=3, codec=codec)
    with SpkReader(tmp_path / "r.spk") as r:
        assert r.meta["attributes"]["shN"]["zero"] == 30
    decoded = read_grid_scene(tmp_path / "r.spk").shN.reshape(len(gs), -1)
    assert int((~decoded.bool().any(1)).sum()) == 30


def test_refining_a_palette_coded_sh_rest_trains_its_centroids_on_fixed_labels(tmp_path, monkeypatch):
    """``sh_mode="palette"`` (levels 0–4): k-means labels are fitted at the first step and kept;
    every row is projected onto its label's mean after each step, so the rows of a label are one
    centroid that training moved, rendered quantised over the palette's (lo, hi); the file is
    coded on those labels and decodes to what training rendered."""
    from splatpack.compress.quantise import fake_quantise

    scene = smooth_scene(n=300, degree=2)
    codec = GridCodecConfig.from_quality(2, palette_size=16)
    written = _refined_with_writer_spy(scene, 2, codec, tmp_path / "r.spk", monkeypatch)
    n = len(scene)
    lo, hi, labels = written["ranges"]["shN"]
    trained = written["gs"]
    before = scene.shN.reshape(n, -1).double().numpy()
    after = trained.shN.reshape(n, -1).double().numpy()
    assert labels.shape == (n,) and 8 < len(set(labels.tolist())) <= 16
    for label in set(labels.tolist()):  # one centroid a label
        rows = after[labels == label]
        assert np.abs(rows - rows[0]).max() < 1e-6
    first = np.stack([before[labels == label].mean(0) for label in labels])
    assert np.abs(after - first).max() > 1e-4  # the centroids trained, not only projected
    rendered = fake_quantise(torch.from_numpy(after).float(), codec.palette_bits, None, (lo, hi)).double().numpy()
    with SpkReader(tmp_path / "r.spk") as r:
        entry = r.meta["attributes"]["shN"]
    assert entry["mode"] == "palette" and entry["lo"] == lo.tolist() and entry["hi"] == hi.tolist()
    decoded, match = _decoded_in_trained_order(tmp_path / "r.spk", trained)
    assert np.abs(decoded.shN.reshape(n, -1).double().numpy() - rendered[match]).max() < 1e-5


def test_the_palette_labels_survive_a_checkpoint_and_removals():
    from splatpack.train.config import GridTraining
    from splatpack.train.grid import GridHooks

    cfg = GridTraining(enabled=True, start=0, quantisation_aware=True, codec={"sh_mode": "palette", "palette_size": 8})
    hooks = GridHooks(cfg, seed=0, qat_start=0)
    params = smooth_scene(n=80, degree=1).to_parameters()
    hooks.before_step(params, 0)
    labels = hooks.sh_labels
    assert labels.shape == (80,) and hooks.sh_basis is None
    rendered = hooks.render_params(dict(params), 0)["shN"].reshape(80, -1)
    assert len(torch.unique(rendered, dim=0)) <= 8
    restored = GridHooks(cfg, seed=0, qat_start=0)
    restored.load_state_dict(hooks.state_dict(), "cpu")
    assert torch.equal(restored.sh_labels, labels)
    hooks.removed(torch.arange(80) < 10)
    assert torch.equal(hooks.sh_labels, labels[10:])
    hooks.renumbered()
    assert hooks.sh_labels is None  # fitted again on the renumbered Gaussians
