"""``compress --target-size`` / ``--target-psnr`` (:mod:`splatpack.apps.target`): the search picks
the level the target names, writes the bytes ``--quality`` writes, and refuses what no level
reaches; the size and PSNR option values (:func:`splatpack.apps.parser.byte_size`, ``float_in``)."""

from __future__ import annotations

import argparse

import pytest
import torch
from grid_scenes import one_numba_thread, smooth_scene

from splatpack.apps.cli import main
from splatpack.apps.parser import byte_size, float_in
from splatpack.apps.target import Target, search_quality, write_to_target
from splatpack.codecs.grid import GridCodecConfig, read_grid_scene, write_grid_scene
from splatpack.core import SplatpackError
from splatpack.formats import save_scene
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras

VIEWS = {"views": 3, "render_size": 48}  # few small views: a test of the search, not of the figure


@pytest.fixture(scope="module")
def scene():
    return smooth_scene(n=300, degree=0)


@pytest.fixture(scope="module")
def levels(scene, tmp_path_factory):
    """Every level as ``--quality`` writes it: q → (path, bytes, PSNR on the search's views)."""
    d = tmp_path_factory.mktemp("levels")
    cams = orbit_cameras(scene.means, VIEWS["views"], VIEWS["render_size"], Target.fov_degrees)
    reference = render_views(scene, *cams, VIEWS["render_size"])
    out = {}
    with one_numba_thread():
        for q in range(11):
            path = d / f"q{q}.spk"
            size = write_grid_scene(path, scene, GridCodecConfig.from_quality(q))
            psnr = mean_psnr_ssim(render_views(read_grid_scene(path), *cams, VIEWS["render_size"]), reference)[0]
            out[q] = (path, size, psnr)
    assert all(out[q][1] < out[q + 1][1] and out[q][2] < out[q + 1][2] for q in range(10))  # the ladder grows
    return out


@pytest.mark.parametrize("level", [0, 4, 7, 10])
def test_target_size_picks_the_largest_quality_that_fits(scene, levels, level, tmp_path):
    """A target between ``level``'s size and the next's: that level, at most the target, byte
    for byte the file ``--quality`` writes (the one sort is the sort it does), no trial left."""
    size = levels[level][1]
    target = size + (levels[level + 1][1] - size) // 2 if level < 10 else size + 1000
    with one_numba_thread():
        chosen = write_to_target(scene, Target(size=target, **VIEWS), tmp_path / "t.spk")
    assert chosen.quality == level and chosen.bytes == size <= target
    assert chosen.path.read_bytes() == levels[level][0].read_bytes()
    assert chosen.psnr == pytest.approx(levels[level][2])
    assert [p.name for p in tmp_path.iterdir()] == ["t.spk"]


def test_target_size_below_the_smallest_level_names_the_smallest(scene, levels, tmp_path):
    smallest = levels[0][1]
    with one_numba_thread(), pytest.raises(SplatpackError) as e:
        write_to_target(scene, Target(size=smallest - 1, **VIEWS), tmp_path / "t.spk", source="in.splat")
    assert str(e.value).startswith("in.splat: ") and f"smallest reachable: {smallest:,} bytes at quality 0" in str(
        e.value
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("level", [0, 5, 9])
def test_target_psnr_is_met_by_the_smallest_level_that_meets_it(scene, levels, level, tmp_path):
    target = (levels[level - 1][2] + levels[level][2]) / 2 if level else levels[0][2] - 1
    with one_numba_thread():
        chosen, trials = search_quality(scene, Target(psnr=target, **VIEWS), tmp_path)
    assert chosen.quality == level and chosen.psnr >= target and chosen.bytes == levels[level][1]
    assert len(trials) <= 4  # a bisection of the 11 levels


def test_target_psnr_above_the_best_level_names_the_best(scene, levels, tmp_path):
    best = levels[10][2]
    with one_numba_thread(), pytest.raises(SplatpackError, match=f"highest reachable: {best:.2f} dB at quality 10"):
        search_quality(scene, Target(psnr=best + 1, **VIEWS), tmp_path)


def test_a_target_is_a_size_or_a_psnr():
    for t in (Target(), Target(size=10, psnr=40.0)):
        with pytest.raises(SplatpackError, match="exactly one"):
            t.validate()


def test_compress_reports_bytes_quality_and_psnr_on_one_line(scene, levels, tmp_path, capsys):
    src = save_scene(scene, tmp_path / "in.ply")
    with one_numba_thread():
        assert main(["compress", str(src), "-o", str(tmp_path / "o.spk"), "--target-size", str(levels[6][1])]) == 0
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and f"{levels[6][1]:,} bytes" in out and "quality 6" in out and " dB PSNR" in out


@pytest.mark.parametrize(
    "text, value",
    [("1500000", 1_500_000), ("500k", 500_000), ("2MB", 2_000_000), ("1.5M", 1_500_000), ("2MiB", 2 << 20)],
)
def test_byte_size_reads_plain_decimal_and_binary_units(text, value):
    assert byte_size(text) == value


@pytest.mark.parametrize("text", ["0", "-3", "2XB", "MB", "1e6", "0.4"])
def test_byte_size_refuses_what_is_not_a_size(text):
    with pytest.raises(argparse.ArgumentTypeError, match="size in bytes"):
        byte_size(text)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--target-size", "0"], ["--target-size", "'0'"]),
        (["--target-size", "2XB"], ["--target-size", "2MB"]),
        (["--target-psnr", "nan"], ["--target-psnr", "'nan'"]),
        (["--target-psnr", "-5"], ["--target-psnr", "> 0"]),
        (["--quality", "6", "--target-size", "1MB"], ["--target-size", "not allowed with", "--quality"]),
        (["--target-size", "1MB", "--target-psnr", "40"], ["--target-psnr", "not allowed with"]),
        (["--target-psnr", "40", "--finetune", "x"], ["--finetune", "--quality"]),
        (["--allocate"], ["--allocate", "--target-size or --target-psnr"]),
    ],
)
def test_bad_targets_give_one_error_line(args, fragments, capsys, tmp_path):
    assert main(["compress", str(tmp_path / "in.ply"), "-o", str(tmp_path / "o.spk"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert all(f in err for f in fragments), err


def test_float_in_takes_finite_numbers_above_its_bound():
    parse = float_in(0)
    assert parse("40.5") == 40.5
    for bad in ("0", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def test_psnr_is_measured_against_the_original_when_given(scene, levels, tmp_path):
    """A pruned scene's PSNR is against the unpruned original's renders (what --prune then
    --target-psnr means), so lower than against its own."""
    pruned = scene.subset(torch.arange(0, len(scene), 2))
    target = Target(size=levels[10][1] * 2, **VIEWS)
    with one_numba_thread():
        own, _ = search_quality(pruned, target, tmp_path / "own")
        against, _ = search_quality(pruned, target, tmp_path / "orig", original=scene)
    assert own.quality == against.quality == 10 and own.bytes == against.bytes
    assert against.psnr < own.psnr - 3


def test_compress_allocate_meets_the_psnr_target_and_says_how(scene, levels, tmp_path, capsys):
    """``--allocate``: per-attribute settings chosen on measured renders; the one line names them."""
    src = save_scene(scene, tmp_path / "in.ply")
    target = levels[5][2]
    with one_numba_thread():
        args = ["compress", str(src), "-o", str(tmp_path / "o.spk"), "--target-psnr", f"{target:.3f}", "--allocate"]
        assert main(args) == 0
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and "means " in out and "opacities " in out and " dB PSNR" in out
    cams = orbit_cameras(scene.means, Target.views, Target.render_size, Target.fov_degrees)
    reference = render_views(scene, *cams, Target.render_size)
    decoded = read_grid_scene(tmp_path / "o.spk")
    assert mean_psnr_ssim(render_views(decoded, *cams, Target.render_size), reference)[0] >= target - 1e-6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ply", "o.spk"]  # no work files left


def test_an_allocation_to_refine_keeps_the_sh_rest_lossless(tmp_path, monkeypatch):
    """``--allocate --refine``: the allocation offers no lossy SH-rest bases (refinement renders
    lossless coefficient rounding exactly, not JPEG XL's error); without ``--refine`` it does."""
    import splatpack.apps.target as target

    seen = []

    def spy(gs, work, **kw):
        seen.append(kw["config"])
        raise SplatpackError("stop here")

    monkeypatch.setattr(target, "allocate_for", spy)
    gs = smooth_scene(n=50, degree=1)
    for to_refine in (True, False):
        with pytest.raises(SplatpackError, match="stop here"):
            write_to_target(gs, Target(psnr=40), tmp_path / "o.spk", allocate=True, to_refine=to_refine)
    refined, plain = seen
    assert refined.lossy_basis_ranks == () and plain.lossy_basis_ranks
    shn = [o for o in refined.options(["shN"])["shN"] if o.distance]
    assert not shn and [o for o in plain.options(["shN"])["shN"] if o.distance]
