"""`splatpack bench` on a small splat: rows for each tool × rate, a plot, unavailable tools reported."""

from __future__ import annotations

import json
import time

import pytest
import torch

from splatpack.apps import bench
from splatpack.apps.bench import BenchConfig, bytes_at_psnr, run_bench, summarise
from splatpack.core import GaussianSet
from splatpack.formats import save_scene
from splatpack.render.camera import orbit_cameras


def small_splat(n: int = 600, seed: int = 0) -> GaussianSet:
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * torch.tensor([1.0, 0.5, 1.0])
    return GaussianSet(
        means=means,
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        scales=torch.full((n, 3), -2.5) + 0.2 * torch.randn(n, 3, generator=g),
        opacities=torch.randn(n, generator=g) + 1.0,
        sh0=0.8 * means[:, None, :] / 2,
        shN=torch.zeros(n, 0, 3),
    )


def test_orbit_cameras_look_at_the_centre():
    gs = small_splat()
    poses, K = orbit_cameras(gs.means, 8, 64, 60.0)
    assert poses.shape == (8, 4, 4) and K[0, 2] == 32
    centre = gs.means.median(0).values.double().numpy()
    for c2w in poses:
        to_centre = centre - c2w[:3, 3]
        cos = to_centre @ c2w[:3, 2] / (to_centre @ to_centre) ** 0.5
        assert cos > 0.999  # the optical axis (+z) points at the centre


def test_bench_writes_rows_and_a_plot(tmp_path):
    src = tmp_path / "small.splat"
    save_scene(small_splat(), src)
    cfg = BenchConfig(inputs=[src], tools=("splatpack", "spz"), qualities=(2, 8), views=3, size=48)
    rows = run_bench(cfg, tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk == rows and (tmp_path / "out" / "rd.png").stat().st_size > 1000
    ok = [r for r in rows if "error" not in r]
    assert {(r["tool"], r["rate"]) for r in ok} >= {("splatpack", "q2"), ("splatpack", "q8"), ("spz", "default")}
    for r in ok:
        assert r["bytes"] > 0 and r["psnr"] > 20 and 0 < r["ssim"] <= 1 and r["encode_seconds"] >= 0
    q = {r["rate"]: r for r in ok if r["tool"] == "splatpack"}
    assert q["q8"]["bytes"] > q["q2"]["bytes"] and q["q8"]["psnr"] > q["q2"]["psnr"]


def test_an_external_tool_past_its_timeout_is_a_reported_row(tmp_path, monkeypatch):
    """``tool_timeout``: splat-transform still running after it is killed, and its row says so."""
    exe = tmp_path / "splat-transform"
    exe.write_text("#!/bin/sh\nexec sleep 30\n")
    exe.chmod(0o755)
    monkeypatch.setattr(bench, "splat_transform_bin", lambda: exe)
    src = tmp_path / "small.splat"
    save_scene(small_splat(), src)
    cfg = BenchConfig(inputs=[src], tools=("splat-transform",), views=2, size=32, tool_timeout=0.5)
    t0 = time.perf_counter()
    (row,) = run_bench(cfg, tmp_path / "out")
    assert time.perf_counter() - t0 < 20
    assert row["tool"] == "splat-transform" and row["error"] == "SplatpackError: splat-transform timed out after 0.5 s"


def test_an_interrupted_run_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    """``results.json`` is written after every row: Ctrl-C during the second tool leaves the first."""
    src = tmp_path / "small.splat"
    save_scene(small_splat(), src)

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "_spz", interrupted)
    cfg = BenchConfig(inputs=[src], tools=("splatpack", "spz"), qualities=(2,), views=2, size=32)
    with pytest.raises(KeyboardInterrupt):
        run_bench(cfg, tmp_path / "out")
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())
    assert (row["tool"], row["rate"]) == ("splatpack", "q2") and row["bytes"] > 0


def test_splat_transform_gets_the_configured_palette_iterations(tmp_path, monkeypatch):
    """``sog_iterations`` reaches splat-transform as ``-i N``, with the CPU k-means (``-g cpu``)."""
    exe = tmp_path / "splat-transform"
    exe.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "args"}\nexit 1\n')
    exe.chmod(0o755)
    monkeypatch.setattr(bench, "splat_transform_bin", lambda: exe)
    src = tmp_path / "small.splat"
    save_scene(small_splat(), src)
    cfg = BenchConfig(inputs=[src], tools=("splat-transform",), views=2, size=32, sog_iterations=3)
    (row,) = run_bench(cfg, tmp_path / "out")
    assert row["error"].startswith("SplatpackError: splat-transform failed")
    args = (tmp_path / "args").read_text().split()
    assert args[args.index("-i") + 1] == "3" and args[args.index("-g") + 1] == "cpu"


def test_sog_export_codes_an_sh_palette_and_scores_below_lossless(tmp_path):
    """sog-export: splatpack's SOG writer in splat-transform's layout, the SH rest as a palette."""
    gs = small_splat()
    g = torch.Generator().manual_seed(1)
    gs = GaussianSet(gs.means, gs.quats, gs.scales, gs.opacities, gs.sh0, 0.1 * torch.randn(len(gs), 3, 3, generator=g))
    src = tmp_path / "small.ply"
    save_scene(gs, src)
    cfg = BenchConfig(inputs=[src], tools=("sog-export",), views=3, size=48, sog_iterations=2)
    (row,) = run_bench(cfg, tmp_path / "out")
    assert "error" not in row and row["rate"] == "default"
    assert 0 < row["bytes"] < src.stat().st_size and 20 < row["psnr"] < 80


def test_bytes_at_psnr_interpolates_log_bytes_on_the_upper_hull_and_never_extrapolates():
    pts = [(1000, 40.0), (4000, 50.0), (3000, 39.0)]  # (3000, 39) is beaten by (1000, 40): dropped
    assert bytes_at_psnr(pts, 45.0) == pytest.approx(2000.0)  # the geometric mean halfway
    assert bytes_at_psnr(pts, 40.0) == pytest.approx(1000.0)
    assert bytes_at_psnr(pts, 50.5) is None and bytes_at_psnr(pts, 39.5) is None


def test_summary_gives_each_peer_its_ratio_at_equal_psnr():
    rows = [
        {"tool": "splatpack", "input": "a", "rate": "q0", "bytes": 1000, "psnr": 40.0},
        {"tool": "splatpack", "input": "a", "rate": "q6", "bytes": 4000, "psnr": 50.0},
        {"tool": "spz", "input": "a", "rate": "default", "bytes": 3000, "psnr": 45.0},
        {"tool": "sogpy", "input": "a", "rate": "default", "error": "ImportError"},
    ]
    s = summarise(rows)["a"]
    assert s["peer_ratios"]["spz default"]["ratio"]["splatpack"] == pytest.approx(1.5)
    assert s["bytes_at"]["45 dB"]["splatpack"] == pytest.approx(2000.0)
    assert "sogpy default" not in s["peer_ratios"]


def test_bench_allocation_rows_meet_their_target_on_the_searchs_views(tmp_path):
    src = tmp_path / "small.splat"
    save_scene(small_splat(300), src)
    cfg = BenchConfig(inputs=[src], tools=("splatpack-alloc",), alloc_psnrs=(35.0,), views=3, size=48)
    (row,) = run_bench(cfg, tmp_path / "out")
    assert "error" not in row, row
    assert row["rate"] == "35dB" and row["bytes"] > 0 and row["psnr"] > 25  # other views than the search's
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["small.splat"]["bytes_at"]


def test_alloc_psnrs_and_qualities_set_every_tool_they_name(tmp_path, monkeypatch, capsys):
    """``bench --alloc-psnrs``: what its help says, the targets of splatpack-alloc and of
    splatpack-alloc-refine (which otherwise kept their defaults); ``--qualities`` the levels of
    every quality-ladder tool (the refined and adaptive ones kept theirs)."""
    from splatpack.apps.cli import main
    from splatpack.apps.commands import bench as command

    seen = []
    monkeypatch.setattr(command, "run_bench", lambda cfg, out: seen.append(cfg))
    args = ["bench", "--tools", "splatpack-alloc-refine", "--alloc-psnrs", "44", "52", "--qualities", "6"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    (cfg,) = seen
    assert cfg.alloc_psnrs == cfg.alloc_refine_psnrs == (44.0, 52.0)
    assert cfg.qualities == cfg.refine_qualities == cfg.adaptive_qualities == (6,)
    assert BenchConfig().alloc_refine_psnrs != (44.0, 52.0) and BenchConfig().refine_qualities != (6,)


def test_the_plot_of_an_input_with_no_measured_rows_has_no_legend_and_no_warning(tmp_path):
    """Every tool failed on an input: its panel is drawn empty, without matplotlib's
    "no artists with labels" warning."""
    import warnings

    from splatpack.apps.bench import plot_rd

    rows = [{"input": "a.ply", "tool": "spz", "error": "SplatpackError: no"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_rd(rows, tmp_path / "rd.png")
    assert (tmp_path / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_grid_setting_names_each_attributes_coding_and_the_zeroed_share(tmp_path):
    from grid_scenes import one_numba_thread, smooth_scene

    from splatpack.codecs.grid import GridCodecConfig, write_grid_scene
    from splatpack.compress.sh_basis import zeroed_sh_rest

    gs = zeroed_sh_rest(smooth_scene(n=100, degree=1), 0.25)
    cfg = GridCodecConfig.from_quality(6, sh_mode="basis", basis_rank=3)
    with one_numba_thread():
        write_grid_scene(tmp_path / "z.spk", gs, cfg)
        write_grid_scene(tmp_path / "p.spk", gs, GridCodecConfig.from_quality(2, palette_size=16))
    assert "shN basis 3x6 z25%" in bench.grid_setting(tmp_path / "z.spk")
    assert bench.grid_setting(tmp_path / "p.spk").startswith("means 12, sh0 6, shN palette 16, scales 5")
