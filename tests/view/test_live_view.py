"""The live training view (viser): the server answers on loopback, updates land in the scene as
one splat node with the current Gaussians, the trainer's step callbacks fire on schedule, and
``splatpack train --viewer`` runs end to end on a tiny scene."""

from __future__ import annotations

import importlib.util
import math
import sys
import urllib.request

import numpy as np
import pytest
import torch

from splatpack.apps.cli import main
from splatpack.captures import load_capture
from splatpack.captures.synthetic import make_synthetic_scene
from splatpack.core import GaussianSet
from splatpack.core.sh import sh_to_rgb
from splatpack.train import Trainer, apply_overrides
from splatpack.train.config import TrainConfig
from splatpack.train.trainer import StepCallback

needs_viser = pytest.mark.skipif(
    importlib.util.find_spec("viser") is None,
    reason="viser is not installed (pip install 'viser>=1.1.1'); it is needed only for `splatpack train --viewer`",
)


@pytest.fixture(scope="module")
def scene_root(tmp_path_factory):
    return make_synthetic_scene(tmp_path_factory.mktemp("live") / "scene", width=32, height=32, n_train=6, n_test=2)


@pytest.fixture(scope="module")
def capture(scene_root):
    return load_capture(scene_root)


def tiny_config(steps: int) -> TrainConfig:
    cfg = TrainConfig(steps=steps, init_random_points=600, eval_lpips=False, log_every=5, scale_schedule=False)
    return apply_overrides(cfg, {"densify": {"refine_start": 5, "refine_every": 5, "reset_every": 1000}})


@pytest.fixture
def live(capture):
    from splatpack.view.live import LiveTrainingView, LiveViewConfig

    view = LiveTrainingView(capture.train, LiveViewConfig(port=0))
    yield view
    view.close()


def splat_node(view):
    """The scene's splat node, looked up in viser's server-side scene state by name."""
    from viser import GaussianSplatHandle

    handles = view.server.scene._handle_from_node_name
    nodes = [h for h in handles.values() if isinstance(h, GaussianSplatHandle)]
    assert len(nodes) == 1, list(handles)
    return nodes[0]


@needs_viser
def test_serves_on_loopback_with_camera_frustums(live, capture):
    assert live.url == f"http://127.0.0.1:{live.port}/"
    with urllib.request.urlopen(live.url, timeout=10) as r:
        assert r.status == 200 and "text/html" in r.headers["Content-Type"]
    names = live.server.scene._handle_from_node_name
    frustums = [n for n in names if n.startswith("/cameras/")]
    assert len(frustums) == len(capture.train)
    f0 = capture.train[0]
    h = names["/cameras/0000"]
    assert np.allclose(h.position, f0.camtoworld[:3, 3], atol=1e-5)
    assert math.isclose(h.fov, 2 * math.atan2(f0.height / 2, f0.K[1, 1]), rel_tol=1e-6)
    # the start view is the training cameras' framing (splatpack.view.framing), up as the scene's up
    from splatpack.view.framing import frame_cameras

    expected = frame_cameras(
        [f.camtoworld for f in capture.train], [f.K for f in capture.train], [f.height for f in capture.train]
    )
    cam = live.server.initial_camera
    np.testing.assert_allclose(cam.look_at, expected.centre, atol=1e-9)
    np.testing.assert_allclose(cam.position, expected.eye, atol=1e-9)
    np.testing.assert_allclose(cam.up, expected.up, atol=1e-9)
    assert expected.up[2] > 0.99  # the synthetic capture is z-up
    assert math.isclose(cam.fov, math.radians(expected.fov_degrees), rel_tol=1e-9)


@needs_viser
def test_refuses_non_loopback():
    from splatpack.core.errors import SplatpackError
    from splatpack.view.live import LiveTrainingView, LiveViewConfig

    with pytest.raises(SplatpackError, match="loopback"):
        LiveTrainingView([], LiveViewConfig(host="0.0.0.0", port=0))
    with pytest.raises(SplatpackError, match=r"0\.\.65535"):
        LiveTrainingView([], LiveViewConfig(port=-1))


@needs_viser
def test_update_puts_the_gaussians_in_the_scene(live):
    gs = GaussianSet.random_in_box(2000, np.full(3, -1.0), np.full(3, 1.0), sh_degree=1, seed=3)
    gs.quats[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    gs.scales[0] = torch.log(torch.tensor([0.1, 0.2, 0.3]))
    live.update(gs, step=7, wait=True)
    node = splat_node(live)
    assert node.buffer.shape == (2000, 8) and live.num_gaussians == 2000 and live.step == 7
    assert np.array_equal(node.centers, gs.means.numpy())
    assert np.allclose(node.covariances[0], np.diag([0.01, 0.04, 0.09]), rtol=2e-3, atol=1e-6)  # float16 in viser
    rgb = (sh_to_rgb(gs.sh0[:, 0]).clamp(0, 1).numpy() * 255).astype(np.int32)
    assert np.abs(node.rgbs.astype(np.int32) - rgb).max() <= 1
    alpha = (torch.sigmoid(gs.opacities).numpy() * 255).astype(np.int32)
    assert np.abs(node.opacities[:, 0].astype(np.int32) - alpha).max() <= 1
    assert "step 7" in live._status.content

    # the trainer's parameters (another count, a Compact-3DGS mask, no SH): the same node, replaced
    params = GaussianSet.random_in_box(500, np.full(3, -1.0), np.full(3, 1.0), sh_degree=0, seed=4).to_parameters()
    del params["sh0"]
    params["mask"] = torch.nn.Parameter(torch.where(torch.arange(500) % 2 == 0, 3.0, -9.0))
    live.update(params, step=8, wait=True)
    node = splat_node(live)
    assert node.buffer.shape == (500, 8) and live.num_gaussians == 500
    assert (node.opacities[1::2] == 0).all() and (node.opacities[0::2] > 0).any()  # masked ones hidden
    assert (node.rgbs == node.rgbs[0]).all()  # no per-Gaussian colour without SH: one grey


@needs_viser
def test_update_does_not_alias_training_tensors(live):
    gs = GaussianSet.random_in_box(300, np.full(3, -1.0), np.full(3, 1.0), sh_degree=0, seed=5)
    params = gs.to_parameters()
    live.update(params, step=1)
    with torch.no_grad():
        params["means"].add_(100.0)  # training moves on while the worker may still be packing
    live.flush()
    assert np.array_equal(splat_node(live).centers, gs.means.numpy())


def test_trainer_step_callbacks(capture, tmp_path):
    seen = []
    cb = StepCallback(lambda step, params: seen.append((step, len(params["means"]))), every=10)
    tr = Trainer(capture, tiny_config(25), tmp_path, callbacks=[cb])
    tr.train()
    assert [s for s, _ in seen] == [0, 10, 20, 25]
    assert seen[-1][1] == len(tr.params["means"])


@needs_viser
def test_train_cli_with_viewer(scene_root, tmp_path, capsys, monkeypatch):
    from splatpack.view.live import LiveTrainingView

    seen = {}
    close = LiveTrainingView.close

    def close_and_record(self):
        self.flush()
        seen.update(step=self.step, n=self.num_gaussians, nodes=len(self.server.scene._handle_from_node_name))
        close(self)

    monkeypatch.setattr(LiveTrainingView, "close", close_and_record)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("init_random_points: 600\neval_lpips: false\n")
    out = tmp_path / "run"
    args = [
        "train",
        scene_root,
        "--steps",
        "12",
        "--out",
        out,
        "--config",
        cfg,
        "--viewer",
        "--viewer-port",
        "0",
        "--viewer-every",
        "5",
    ]
    assert main([str(a) for a in args]) == 0
    captured = capsys.readouterr()
    assert "live view: http://127.0.0.1:" in captured.err
    assert captured.out.strip() == str(out / "metrics.json")  # viser's banner stays off stdout
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert seen["step"] == 12 and seen["n"] == metrics["num_gaussians"] and seen["nodes"] > 1


def test_train_cli_viewer_without_viser(scene_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "viser", None)  # as if it were not installed
    rc = main(["train", str(scene_root), "--steps", "2", "--out", str(tmp_path / "run"), "--viewer"])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert rc == 2 and len(lines) == 1 and "viser" in lines[0] and "pip install" in lines[0]
