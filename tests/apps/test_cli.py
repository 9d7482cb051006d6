"""The command line: one-line errors on bad input, and train → render end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from capture_fixtures import make_blender, make_colmap

from splatpack.apps.cli import main


def run_cli(args, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    return rc, err


def assert_one_line_error(rc: int, err: str, *fragments: str) -> None:
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_path_does_not_exist(tmp_path, capsys):
    rc, err = run_cli(["train", tmp_path / "nope"], capsys)
    assert_one_line_error(rc, err, "nope", "does not exist")


def test_json_without_frames(tmp_path, capsys):
    make_blender(tmp_path)
    (tmp_path / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": []}))
    rc, err = run_cli(["train", tmp_path, "--steps", "1"], capsys)
    assert_one_line_error(rc, err, "transforms_train.json", "frames")


def test_missing_image(tmp_path, capsys):
    make_colmap(tmp_path)
    victim = sorted((tmp_path / "images").iterdir())[1]
    victim.unlink()
    rc, err = run_cli(["train", tmp_path, "--steps", "1"], capsys)
    assert_one_line_error(rc, err, victim.name)


def test_truncated_bin(tmp_path, capsys):
    make_colmap(tmp_path)
    f = tmp_path / "sparse/0/images.bin"
    f.write_bytes(f.read_bytes()[:-7])
    rc, err = run_cli(["train", tmp_path, "--steps", "1"], capsys)
    assert_one_line_error(rc, err, "images.bin")


def test_corrupt_bin(tmp_path, capsys):
    make_colmap(tmp_path)
    f = tmp_path / "sparse/0/cameras.bin"
    f.write_bytes(b"\xff" * 64)
    rc, err = run_cli(["train", tmp_path, "--steps", "1"], capsys)
    assert_one_line_error(rc, err, "cameras.bin")


def test_unsupported_camera_model(tmp_path, capsys):
    make_colmap(tmp_path, fmt="txt", model="FOV", params=[20.0, 21.0, 8.0, 6.0, 0.1])
    rc, err = run_cli(["train", tmp_path, "--steps", "1"], capsys)
    assert_one_line_error(rc, err, "cameras.txt", "FOV")


def test_bad_config_and_scene_file(tmp_path, capsys):
    scene = tmp_path / "s.yaml"
    scene.write_text("name: x\n")
    rc, err = run_cli(["train", scene], capsys)
    assert_one_line_error(rc, err, "s.yaml", "no 'data'")
    make_blender(tmp_path / "cap")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learning_rate: 3\n")
    rc, err = run_cli(["train", tmp_path / "cap", "--config", cfg], capsys)
    assert_one_line_error(rc, err, "c.yaml", "unknown setting 'learning_rate'")


def test_render_bad_ply(tmp_path, capsys):
    (tmp_path / "x.ply").write_bytes(
        b"ply\nformat binary_little_endian 1.0\nelement vertex 99999999\nproperty float x\nend_header\n"
    )
    rc, err = run_cli(["render", tmp_path / "x.ply", "--orbit"], capsys)
    assert_one_line_error(rc, err, "x.ply")


def test_console_script_no_traceback(tmp_path):
    exe = Path(sys.executable).with_name("splatpack")
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    r = subprocess.run([str(exe), "train", str(tmp_path / "missing")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = subprocess.run([str(exe), "train", str(tmp_path / "missing"), "--debug"], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_train_then_render(tmp_path, capsys):
    from splatpack.captures.synthetic import make_synthetic_scene

    root = make_synthetic_scene(tmp_path / "scene", width=40, height=40, n_train=8, n_test=2)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("init_random_points: 800\neval_lpips: false\n")
    out = tmp_path / "run"
    assert main(["train", str(root), "--steps", "30", "--out", str(out), "--config", str(cfg)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 30 and metrics["backend"] == "cpu"
    assert main(["render", str(out)]) == 0
    assert len(list((out / "renders").glob("*.png"))) == 2
    assert main(["render", str(out), "--orbit", "--frames", "6", "--out", str(tmp_path / "orbit")]) == 0
    video = tmp_path / "orbit" / "orbit.mp4"
    assert video.is_file() and video.stat().st_size > 1000
    import imageio.v3 as iio

    assert iio.imread(video, index=None).shape[0] == 6


@pytest.mark.parametrize(
    "args, needle",
    [
        (["compress", "x.ply", "-o", "y.spk", "--quality", "best"], "--quality"),
        (["bench", "--qualities", "a"], "--qualities"),
        (["compres", "x"], "unknown command 'compres' (did you mean 'compress'?)"),
        (["info"], "info"),
    ],
)
def test_unparsable_arguments_give_one_line(args, needle, capsys):
    """Arguments the parser refuses get one line too, not a usage report."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert "│" not in err and "──" not in err


def test_compact_flag_trains_the_full_preset(tmp_path, capsys):
    """``--compact`` is ``--config full``; ``--config`` also takes the shipped presets by name."""
    from splatpack.captures.synthetic import make_synthetic_scene
    from splatpack.spk.container import SpkReader
    from splatpack.train.scenes import scene_config

    root = make_synthetic_scene(tmp_path / "scene", width=40, height=40, n_train=8, n_test=2)
    for name, colour_field, grid in (("full", False, True), ("compact", True, False), ("sog", None, True)):
        _, cfg, _ = scene_config(str(root), name, {})
        assert cfg.grid.enabled == grid and (colour_field is None or cfg.compact.colour_field == colour_field), name
    scene = tmp_path / "tiny.yaml"
    scene.write_text(
        f"name: tiny\ndata: {root}\nformat: blender\noverrides: {{init_random_points: 800, eval_lpips: false}}\n"
    )
    out = tmp_path / "run"
    assert main(["train", str(scene), "--compact", "--steps", "40", "--out", str(out)]) == 0
    with SpkReader(out / "scene.spk") as r:
        assert r.meta["kind"] == "sog-grid" and r.meta["attributes"]["shN"]["mode"] == "rvq"
    capsys.readouterr()
    rc, err = run_cli(["train", str(scene), "--compact", "--config", "sog"], capsys)
    assert_one_line_error(rc, err, "--compact", "not both")


def test_training_that_prunes_everything_gives_one_line(tmp_path, capsys):
    """30 random Gaussians on a 40×40 object: the compact masks (or the α cut) remove them all,
    which ends in one error line naming the run folder, not a crash in the codec."""
    from splatpack.captures.synthetic import make_synthetic_scene

    root = make_synthetic_scene(tmp_path / "scene", width=40, height=40, n_train=8, n_test=2)
    scene = tmp_path / "t.yaml"
    scene.write_text(
        f"name: t\ndata: {root}\nformat: blender\noverrides: {{init_random_points: 30, init_mode: box, eval_lpips: false}}\n"
    )
    for preset in ("compact", "full"):
        capsys.readouterr()
        rc, err = run_cli(["train", scene, "--config", preset, "--steps", "40", "--out", tmp_path / preset], capsys)
        assert "Traceback" not in err  # the progress lines, then the error line
        assert_one_line_error(rc, err.splitlines()[-1] + "\n", str(tmp_path / preset), "no Gaussians are left")
        assert not (tmp_path / preset / "scene.spk").exists()


def test_relative_size_says_larger_for_a_file_that_grew():
    from splatpack.apps.inspect import relative_size

    assert relative_size(100, 310) == "3.1× smaller" and relative_size(140, 100) == "1.4× larger"
    assert relative_size(5, 0) == "5.0× larger"  # an empty reference file
