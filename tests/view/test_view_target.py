"""What ``splatpack view PATH`` opens and where it starts (:mod:`splatpack.view.target`): a run
folder's result, the run's training cameras and background, the fallbacks when the capture moved
or ``scene.json`` is broken, a compact ``.spk``'s stored cameras, and the command end to end."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from framing_scenes import BALL_HEIGHT, BASE_DEPTH, object_gaussians, write_run

from splatpack.captures.synthetic import make_synthetic_scene
from splatpack.core.errors import SplatpackError
from splatpack.view.framing import BLENDER_UP, RDF_UP
from splatpack.view.target import resolve_target, scene_points, view_framing


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory):
    """A tiny z-up Blender capture (the built-in scene's generator at 16×16 pixels)."""
    return make_synthetic_scene(tmp_path_factory.mktemp("capture") / "scene", width=16, height=16, n_train=12, n_test=2)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, capture_dir):
    return write_run(tmp_path_factory.mktemp("runs") / "default", object_gaussians(BLENDER_UP), capture_dir)


def framing_of(path):
    target = resolve_target(path)
    return target, *view_framing(target, scene_points(target.file))


def screen_v(framing, point) -> float:
    """How far down the screen (camera y over depth) a world point appears in the start view."""
    w2c = np.linalg.inv(framing.c2w())
    p = w2c[:3, :3] @ np.asarray(point, np.float64) + w2c[:3, 3]
    assert p[2] > 0, "behind the start camera"
    return p[1] / p[2]


def test_a_run_folder_opens_its_result(tmp_path, run_dir):
    target = resolve_target(run_dir)
    assert target.file == run_dir / "point_cloud.ply" and target.run_dir == run_dir
    assert resolve_target(run_dir / "point_cloud.ply").run_dir == run_dir  # the file of a run is framed as the run
    both = tmp_path / "sog_run"
    both.mkdir()
    for name in ("point_cloud.ply", "scene.spk", "scene.json"):
        (both / name).write_bytes(b"")
    assert resolve_target(both).file == both / "scene.spk"  # the file the run's metrics describe
    loose = tmp_path / "loose.ply"
    loose.write_bytes(b"")
    assert resolve_target(loose).run_dir is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SplatpackError, match=r"folder without scene\.spk or point_cloud\.ply"):
        resolve_target(empty)
    with pytest.raises(SplatpackError, match="does not exist"):
        resolve_target(tmp_path / "nope")


def test_a_run_is_framed_by_its_training_cameras(run_dir):
    target, framing, notes = framing_of(run_dir)
    assert notes == []
    assert framing.source == "cameras" and framing.background == (1.0, 1.0, 1.0)
    assert framing.up @ np.array(BLENDER_UP) > 0.99  # the capture is z-up
    assert np.linalg.norm(framing.centre) < 1e-6  # its cameras all look at the origin
    assert framing.distance == pytest.approx(4.0)  # the generator's camera radius
    assert screen_v(framing, [0, 0, BALL_HEIGHT]) < screen_v(framing, [0, 0, BASE_DEPTH])  # the ball is above


def test_fallbacks_when_the_cameras_are_gone(tmp_path, run_dir):
    moved = tmp_path / "moved"
    write_run(moved, object_gaussians(BLENDER_UP), tmp_path / "no-such-capture")
    _, framing, notes = framing_of(moved)
    assert len(notes) == 1 and "training cameras cannot be read" in notes[0]
    # the Gaussians, with the capture format's up and the run's background
    assert framing.source == "gaussians" and framing.background == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(framing.up, BLENDER_UP)
    assert screen_v(framing, [0, 0, BALL_HEIGHT]) < screen_v(framing, [0, 0, BASE_DEPTH])
    (moved / "scene.json").write_text("{not json")
    _, framing, notes = framing_of(moved)
    assert len(notes) == 1 and "scene.json: not readable" in notes[0]
    assert framing.source == "gaussians" and framing.background is None
    np.testing.assert_allclose(framing.up, RDF_UP)


def test_a_compact_spk_is_framed_by_its_stored_cameras(tmp_path):
    from compact_scenes import make_code

    from splatpack.codecs.compact import write_compact

    code = make_code(n=200, sh_bases=1)  # one stored camera at (0, 0, -3) looking along +z
    code.meta["background"] = [1.0, 1.0, 1.0]
    path = tmp_path / "compact.spk"
    write_compact(path, code)
    target, framing, notes = framing_of(path)
    assert target.run_dir is None and notes == []
    assert framing.source == "cameras" and framing.background == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(framing.eye[:2], 0.0, atol=1e-5)
    assert framing.eye[2] < framing.centre[2]  # looking along +z, as the stored camera
    np.testing.assert_allclose(framing.up, RDF_UP, atol=1e-6)


def test_view_command_serves_a_run_folder_with_its_framing(run_dir):
    """``splatpack view RUNDIR --no-browser`` serves the run's point_cloud.ply, framed."""
    cmd = [sys.executable, "-c", "import sys; from splatpack.apps.cli import main; sys.exit(main())"]
    proc = subprocess.Popen(
        [*cmd, "view", str(run_dir), "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and "point_cloud.ply" in line, (line, proc.poll() and proc.stderr.read())
        host, port = line.split("http://", 1)[1].split()[0].rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/config.json")
        (entry,) = json.loads(conn.getresponse().read())["files"]
        conn.close()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and "warning" not in err, err
    assert entry["name"] == "point_cloud.ply"
    framing = entry["framing"]
    assert framing["source"] == "cameras" and framing["background"] == [1.0, 1.0, 1.0]
    assert framing["up"][2] > 0.99
