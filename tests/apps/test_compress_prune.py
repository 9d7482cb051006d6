"""``compress --prune F``: the fraction F of least-contributing Gaussians is removed before coding,
said in one line; values outside (0, 0.9] are one parser error."""

from __future__ import annotations

import pytest
from grid_scenes import smooth_scene

from splatpack.apps.cli import main
from splatpack.codecs.grid import read_grid_scene
from splatpack.formats import save_scene
from splatpack.spk.container import SpkReader


def test_prune_removes_the_fraction_and_says_so(tmp_path, capsys):
    src = tmp_path / "in.ply"
    save_scene(smooth_scene(n=200, degree=1), src)
    assert main(["compress", str(src), "-o", str(tmp_path / "p.spk"), "--prune", "0.25", "--quality", "4"]) == 0
    out = capsys.readouterr().out
    assert "pruned 50 of 200 Gaussians" in out and "150 Gaussians" in out
    assert len(read_grid_scene(tmp_path / "p.spk")) == 150


@pytest.mark.parametrize("value", ["0", "0.95", "-0.1", "nan", "half"])
def test_bad_prune_values_are_one_error_line(tmp_path, capsys, value):
    assert main(["compress", str(tmp_path / "x.ply"), "-o", str(tmp_path / "y.spk"), "--prune", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--prune" in err[0] and "(0, 0.9]" in err[0]


def test_sh_cull_and_sh_basis_shape_the_sh_rest(tmp_path, capsys):
    src = tmp_path / "in.ply"
    gs = smooth_scene(n=200, degree=3)
    save_scene(gs, src)
    out = tmp_path / "b.spk"
    assert main(["compress", str(src), "-o", str(out), "--sh-basis", "6", "--sh-cull", "1e-3"]) == 0
    text = capsys.readouterr().out
    assert "SH bands culled: mean degree" in text
    meta = SpkReader(out).meta["attributes"]["shN"]
    assert meta["mode"] == "basis" and meta["rank"] == 6
    assert read_grid_scene(out).shN.shape == (200, 15, 3)


def test_sh_basis_with_a_target_is_one_error_line(tmp_path, capsys):
    src = tmp_path / "in.ply"
    save_scene(smooth_scene(n=50, degree=1), src)
    assert main(["compress", str(src), "-o", str(tmp_path / "x.spk"), "--sh-basis", "4", "--target-size", "1MB"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sh-basis" in err[0]
    assert main(["compress", str(src), "-o", str(tmp_path / "x.spk"), "--sh-basis", "46"]) == 2
    assert "--sh-basis" in capsys.readouterr().err


def test_sh_zero_stores_the_zeroed_sh_rests_as_a_mask(tmp_path, capsys):
    """``--sh-zero F`` with a basis-coded SH rest (quality 6): F·N SH rests decode to zero and the
    file marks them; with a target it is one error line (``--allocate`` chooses F)."""
    src = tmp_path / "in.ply"
    save_scene(smooth_scene(n=200, degree=3), src)
    out = tmp_path / "z.spk"
    assert main(["compress", str(src), "-o", str(out), "--quality", "6", "--sh-zero", "0.3"]) == 0
    assert "SH rest zeroed for 60 of 200 Gaussians" in capsys.readouterr().out
    meta = SpkReader(out).meta["attributes"]["shN"]
    assert meta["mode"] == "basis" and meta["zero"] == 60
    decoded = read_grid_scene(out).shN.reshape(200, -1)
    assert int((~decoded.bool().any(1)).sum()) == 60
    args = ["compress", str(src), "-o", str(tmp_path / "x.spk"), "--sh-zero", "0.3", "--target-psnr", "40"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sh-zero" in err[0]
