"""``splatpack view`` of a ``.spk`` coded under a bit model (``kind: prior-grid``): the browser
cannot run the model, so the server is handed the same Gaussians as a grid scene; every other
file is served as it is."""

from __future__ import annotations

import torch
from grid_scenes import one_numba_thread, smooth_scene
from prior_models import ship_tiny_model

from splatpack.apps.commands.view import browser_readable
from splatpack.codecs import read_gaussians
from splatpack.codecs.prior.codec import PRIOR_SCENE_CODEC, PriorCodecConfig
from splatpack.formats import save_scene
from splatpack.spk.container import SpkReader


def test_prior_files_are_served_as_the_grid_scene_they_code(tmp_path, monkeypatch):
    ship_tiny_model(tmp_path, monkeypatch)
    scene = smooth_scene(120, degree=0)
    src = tmp_path / "in" / "scene.spk"
    src.parent.mkdir()
    with one_numba_thread():
        PRIOR_SCENE_CODEC.encode(scene, PriorCodecConfig("tiny-v1")).write(src)
    out_dir = tmp_path / "served"
    out_dir.mkdir()
    served = browser_readable(src, out_dir)
    assert served == out_dir / "scene.spk"
    with SpkReader(served) as r:
        assert r.meta["kind"] == "sog-grid"
    a, b = read_gaussians(src), read_gaussians(served)
    assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("means", "quats", "scales", "opacities", "sh0"))
    assert browser_readable(served, out_dir) == served  # a grid scene is served as it is
    ply = tmp_path / "scene.ply"
    save_scene(scene, ply)
    assert browser_readable(ply, out_dir) == ply
