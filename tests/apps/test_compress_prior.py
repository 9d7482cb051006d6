"""``splatpack compress IN -o OUT.spk --prior [MODEL]``: a prior-grid file that decodes to the
same Gaussians as quality 6's grid scene, and a one-line error for settings it does not take."""

from __future__ import annotations

import pytest
import torch
from format_scenes import random_set
from grid_scenes import one_numba_thread
from prior_models import ship_tiny_model

from splatpack.apps.cli import main
from splatpack.codecs import read_gaussians
from splatpack.codecs.grid import write_grid_scene
from splatpack.codecs.prior.training import grid_config
from splatpack.formats import load_scene, save_scene
from splatpack.spk.container import SpkReader


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    ship_tiny_model(tmp_path, monkeypatch)
    return tmp_path


def test_compress_with_prior_keeps_quality_6s_gaussians(shipped, capsys):
    """The prior codes quality 6's values on the PLAS grid its models were trained on, whole
    (``grid_config``): the same Gaussians as the grid codec with those settings."""
    src = shipped / "in.ply"
    save_scene(random_set(120, seed=3), src)
    with one_numba_thread():
        assert main(["compress", str(src), "-o", str(shipped / "p.spk"), "--prior", "tiny-v1"]) == 0
        write_grid_scene(shipped / "g.spk", load_scene(src), grid_config())
    assert "wrote" in capsys.readouterr().out
    with SpkReader(shipped / "p.spk") as r:
        assert r.meta["kind"] == "prior-grid" and r.meta["prior"]["model"] == "tiny-v1"
    a, g = read_gaussians(shipped / "p.spk"), read_gaussians(shipped / "g.spk")
    assert all(torch.equal(getattr(a, f), getattr(g, f)) for f in ("means", "quats", "scales", "opacities", "sh0"))


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [(["--quality", "3"], "--prior codes quality 6"), (["--prior", "absent-v9"], "no coding model 'absent-v9'")],
)
def test_compress_with_prior_refuses_what_it_cannot_do(shipped, capsys, extra, fragment):
    src = shipped / "in.ply"
    save_scene(random_set(50, seed=1), src)
    args = ["compress", str(src), "-o", str(shipped / "p.spk"), *extra]
    rc = main(args if "--prior" in extra else [*args, "--prior", "tiny-v1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and fragment in err and len(err.splitlines()) == 1
