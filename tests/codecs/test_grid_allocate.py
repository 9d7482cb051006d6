"""Render-aware bit allocation (:mod:`splatpack.codecs.grid.allocate`): the Lagrangian sweep keeps
only undominated allocations, the additive error model, and a search whose file meets its target,
is the grid codec's own file for the chosen settings, and refuses targets out of reach."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from grid_scenes import one_numba_thread, smooth_scene

from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid import GridCodecConfig, read_grid_scene
from splatpack.codecs.grid.allocate import (
    AllocationConfig,
    Measured,
    Option,
    allocate,
    candidates,
    predicted_psnr,
    rate_distortion,
)
from splatpack.codecs.grid.encode import encode_grid_scene
from splatpack.core import SplatpackError
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras
from splatpack.spk.container import SpkReader

SMALL = {"views": 3, "render_size": 48}
# few options: a test of the search, not of the figure
FEW = {"means": (9, 12), "sh0": (4, 6), "shN": (3, 4), "scales": (4, 6), "quats": (4, 6), "opacities": (4, 6)}


def _table(rates: dict[str, list[int]], mse: dict[str, list[float]]) -> dict[str, list[Measured]]:
    return {
        a: [Measured(Option(a, b), ([], {}), r, np.array([d])) for b, (r, d) in enumerate(zip(rates[a], mse[a]))]
        for a in rates
    }


def test_candidates_are_the_undominated_allocations_from_cheapest_to_best():
    table = _table(
        {"means": [10, 20, 40], "sh0": [5, 6, 30]},
        {"means": [1e-2, 1e-4, 1e-6], "sh0": [1e-3, 1e-5, 1e-7]},
    )
    hull = candidates(table, np.array([0.0]), overhead=7)
    assert hull[0].predicted_bytes == 7 + 10 + 5  # λ = 0: the smallest file
    assert [o.bits for o in hull[-1].options.values()] == [2, 2]  # λ = ∞: the least distortion
    everything = []
    for pick in itertools.product(*table.values()):
        everything.append((7 + sum(m.bytes for m in pick), sum(float(m.delta_mse[0]) for m in pick)))
    for c in hull:  # nothing is both smaller and better than a candidate
        d = 10 ** (-c.predicted_psnr / 10)
        assert not any(b < c.predicted_bytes and e < d * (1 - 1e-9) for b, e in everything)
    assert [c.predicted_bytes for c in hull] == sorted(c.predicted_bytes for c in hull)


def test_predicted_psnr_adds_the_errors_per_view_then_averages_the_views():
    ref = np.array([1e-6, 1e-5])
    got = predicted_psnr(ref, [np.array([1e-6, 0.0]), np.array([0.0, 9e-5])])
    assert got == pytest.approx((-10 * np.log10(2e-6) - 10 * np.log10(1e-4)) / 2)


@pytest.fixture(scope="module")
def scene():
    return smooth_scene(n=300, degree=1)


@pytest.fixture(scope="module")
def reference(scene):
    cams = orbit_cameras(scene.means, SMALL["views"], SMALL["render_size"], 60.0)
    return cams, render_views(scene, *cams, SMALL["render_size"])


def _psnr(path, reference):
    cams, ref = reference
    return mean_psnr_ssim(render_views(read_grid_scene(path), *cams, SMALL["render_size"]), ref)[0]


@pytest.mark.parametrize("target", [35.0, 45.0])
def test_a_psnr_target_is_met_by_the_grid_codecs_own_file(scene, reference, target, tmp_path):
    cfg = AllocationConfig(bits=FEW, basis_options=((2, 5),), cull_taus=(), **SMALL)
    with one_numba_thread():
        chosen, hull = allocate(scene, tmp_path, psnr=target, config=cfg)
        assert chosen.psnr >= target and _psnr(chosen.path, reference) == pytest.approx(chosen.psnr)
        # the file is what the encoder writes for the chosen settings on the same (deterministic) sort
        base = GridCodecConfig.from_quality(10, frames=read_grid_scene_frames(chosen.path))
        sections, meta = encode_grid_scene(scene, chosen.config(base))
        again = EncodedScene(sections, meta, len(scene)).write(tmp_path / "again.spk")
    assert again == chosen.bytes and (tmp_path / "again.spk").read_bytes() == chosen.path.read_bytes()
    cheaper = [c for c in hull if c.predicted_bytes < chosen.predicted_bytes]
    assert all(c.predicted_psnr < target or c.psnr is not None for c in cheaper)  # cheaper ones fell short


def test_rate_distortion_is_the_hull_allocate_searches_without_making_a_file(scene, tmp_path):
    cfg = AllocationConfig(bits=FEW, basis_options=(), distances={}, cull_taus=(), prune_fractions=(0.0, 0.5), **SMALL)
    with one_numba_thread():
        hull, table = rate_distortion(scene, tmp_path, config=cfg)
        chosen, searched = allocate(scene, tmp_path / "made", psnr=40.0, config=cfg)
    assert sorted(table) == sorted(FEW) and [m.option.bits for m in table["means"]] == [9, 10, 11, 12]
    assert {c.prune for c in hull} == {0.0, 0.5} and all(c.bytes is None and c.path is None for c in hull)
    assert [c.predicted_bytes for c in hull] == [c.predicted_bytes for c in searched]
    assert [c.describe() for c in hull] == [c.describe() for c in searched]
    assert not list(tmp_path.glob("allocation-*.spk")) and list((tmp_path / "made").glob("allocation-*.spk"))


def read_grid_scene_frames(path) -> str:
    with SpkReader(path) as r:
        return r.meta["frames"]


def test_a_size_target_gives_a_file_that_fits(scene, tmp_path):
    cfg = AllocationConfig(bits=FEW, basis_options=(), distances={}, **SMALL)
    with one_numba_thread():
        loose, hull = allocate(scene, tmp_path, psnr=1.0, config=cfg)
        size = (min(c.predicted_bytes for c in hull) + max(c.predicted_bytes for c in hull)) // 2
        chosen, _ = allocate(scene, tmp_path, size=size, config=cfg)
    assert chosen.bytes <= size and chosen.path.stat().st_size == chosen.bytes
    assert chosen.psnr >= loose.psnr


def test_pruning_is_one_more_choice_and_its_file_holds_fewer_gaussians(scene, reference, tmp_path):
    cfg = AllocationConfig(bits=FEW, basis_options=(), distances={}, prune_fractions=(0.0, 0.5), **SMALL)
    with one_numba_thread():
        chosen, hull = allocate(scene, tmp_path, psnr=1.0, config=cfg)  # anything goes: the smallest
    assert {c.prune for c in hull} == {0.0, 0.5}
    assert chosen.prune == 0.5 and chosen.num_gaussians == len(read_grid_scene(chosen.path)) == 150
    assert _psnr(chosen.path, reference) == pytest.approx(chosen.psnr)


@pytest.mark.parametrize("prune", [0.0, 0.5])
def test_band_culling_is_an_sh_rest_option_also_on_a_pruned_scene(scene, tmp_path, prune):
    """A τ that culls every band: the cheapest SH rest, chosen for a loose target; the file's
    SH rest is zero, pruned or not."""
    cfg = AllocationConfig(
        bits=FEW, basis_options=(), distances={}, cull_taus=(1e9,), cull_bits=(3,), prune_fractions=(prune,), **SMALL
    )
    with one_numba_thread():
        chosen, _ = allocate(scene, tmp_path, psnr=1.0, config=cfg)
    assert chosen.options["shN"].cull == 1e9 and chosen.prune == prune
    decoded = read_grid_scene(chosen.path)
    assert len(decoded) == len(scene) - round(prune * len(scene)) and decoded.shN.abs().max() == 0


def test_targets_out_of_reach_name_the_reachable_end(scene, tmp_path):
    cfg = AllocationConfig(bits=FEW, basis_options=(), distances={}, **SMALL)
    with one_numba_thread():
        with pytest.raises(SplatpackError, match="above the highest reachable by allocation"):
            allocate(scene, tmp_path, psnr=99.0, config=cfg, source="in.ply")
        with pytest.raises(SplatpackError, match="below the smallest allocation"):
            allocate(scene, tmp_path, size=100, config=cfg)
    with pytest.raises(SplatpackError, match="exactly one"):
        allocate(scene, tmp_path, psnr=30.0, size=10_000)


def test_options_cover_the_ranges_the_basis_and_the_lossy_codings():
    opts = AllocationConfig(
        bits={"shN": (3, 4), "sh0": (5, 5)},
        basis_options=((4, 5),),
        cull_taus=(1e-3,),
        cull_bits=(4,),
        lossy_basis_ranks=(8,),
        distances={"shN": (1.0,), "sh0": (0.5, 1.0, 2.0)},
    ).options(["shN", "sh0"])
    assert [o.short() for o in opts["shN"]] == ["3", "4", "5/r4", "4/c0.001", "8/r8/d1"]
    assert [o.short() for o in opts["sh0"]] == ["5", "8/d0.5", "8/d1", "8/d2"]
    zeroed = AllocationConfig(bits={"shN": (3, 3)}, basis_options=((4, 5), (8, 5), (8, 7)), zero_ranks=(8,))
    zeroed = zeroed.options(["shN"])["shN"]
    assert [o.short() for o in zeroed if o.zero] == ["5/r8/z0.2", "5/r8/z0.35", "7/r8/z0.2", "7/r8/z0.35"]
    cfg = Option("shN", 5, rank=4).apply(GridCodecConfig())
    assert cfg.sh_mode == "basis" and cfg.basis_rank == 4 and cfg.shN.bits == 5
    lossy = Option("shN", 8, rank=8, distance=1.0).apply(GridCodecConfig())  # a lossy basis: its planes by JPEG XL
    assert lossy.sh_mode == "basis" and lossy.basis_rank == 8 and (lossy.shN.codec, lossy.shN.distance) == ("jxl", 1.0)
    assert Option("sh0", 8, distance=1.0).apply(GridCodecConfig()).sh0.distance == 1.0


def test_zeroing_sh_rests_is_a_basis_option_also_on_a_pruned_scene(tmp_path):
    """A basis with half the SH rests zeroed: the cheapest SH rest, chosen for a loose target; the
    file marks that half (of the pruned scene where pruned) in its zero mask."""
    scene = smooth_scene(n=200, degree=1)
    cfg = AllocationConfig(
        bits={**FEW, "shN": (6, 6)},
        basis_options=((4, 3),),
        zero_ranks=(4,),
        zero_fractions=(0.5,),
        distances={},
        cull_taus=(),
        prune_fractions=(0.5,),
        **SMALL,
    )
    with one_numba_thread():
        chosen, _ = allocate(scene, tmp_path, psnr=1.0, config=cfg)
    assert chosen.options["shN"].zero == 0.5 and chosen.prune == 0.5
    with SpkReader(chosen.path) as r:
        assert r.meta["attributes"]["shN"]["zero"] == 50
    decoded = read_grid_scene(chosen.path).shN.reshape(100, -1)
    assert int((~decoded.bool().any(1)).sum()) == 50
