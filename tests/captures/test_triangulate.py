"""``splatpack process IMAGES --poses FILE``: points triangulated with known poses held fixed.

The photos are renders of the built-in synthetic object (:mod:`splatpack.captures.synthetic`)
from ten cameras 8° apart on an arc, so SIFT matches neighbours; the same cameras are written
as nerfstudio, LLFF, Blender and COLMAP pose files. The triangulated points are checked against
the object's analytic surface (spheres and box), the written poses against the given ones.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from capture_fixtures import write_colmap
from PIL import Image

from splatpack.apps.cli import main
from splatpack.captures import load_capture
from splatpack.captures.blender import OPENGL_TO_OPENCV
from splatpack.captures.downscale import DownscaleConfig, factor_for_max_size, write_downscaled
from splatpack.captures.synthetic import BOX_MAX, BOX_MIN, CAMERA_ANGLE_X, SPHERES, opengl_look_at, render_view
from splatpack.captures.types import Distortion, Frame
from splatpack.core.errors import SplatpackError

pycolmap = pytest.importorskip("pycolmap", reason="point triangulation needs pycolmap")
from splatpack.captures.pose_file import read_pose_file  # noqa: E402
from splatpack.captures.triangulate import TriangulationConfig, colmap_camera, triangulate_known_poses  # noqa: E402

SIZE, VIEWS, STEP_DEG = 320, 10, 8.0
FOCAL = 0.5 * SIZE / math.tan(0.5 * CAMERA_ANGLE_X)
SCENE_SIZE = 2.4  # the object fits in [-1.2, 1.2]^3


def surface_distance(p: np.ndarray) -> np.ndarray:
    """Distance of points [N, 3] to the synthetic object's surface (nearest sphere or the box)."""
    d = [np.abs(np.linalg.norm(p - np.asarray(s.center), axis=1) - s.radius) for s in SPHERES]
    q = np.abs(p - (BOX_MIN + BOX_MAX) / 2) - (BOX_MAX - BOX_MIN) / 2
    d.append(np.abs(np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0)))
    return np.min(d, axis=0)


@pytest.fixture(scope="module")
def arc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """``(folder with images/ and a nerfstudio transforms.json, OpenCV camera-to-world by name)``."""
    root = tmp_path_factory.mktemp("arc")
    (root / "images").mkdir()
    c2ws, frames = {}, []
    for k in range(VIEWS):
        az, el = math.radians(20 + STEP_DEG * k), math.radians(35)
        gl = opengl_look_at(4 * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]))
        name = f"v{k:02d}.png"
        Image.fromarray(render_view(gl, SIZE, SIZE)[..., :3]).save(root / "images" / name)
        c2ws[name] = gl @ OPENGL_TO_OPENCV
        frames.append({"file_path": f"images/{name}", "transform_matrix": gl.tolist()})
    meta = {"camera_model": "PINHOLE", "fl_x": FOCAL, "fl_y": FOCAL, "cx": SIZE / 2, "cy": SIZE / 2}
    (root / "transforms.json").write_text(json.dumps({**meta, "w": SIZE, "h": SIZE, "frames": frames}))
    return root, c2ws


def write_llff(path: Path, c2ws: dict[str, np.ndarray], scale: float = 1.0) -> None:
    """``poses_bounds.npy`` for the cameras in name order, at ``scale`` × the photos' size."""
    rows = []
    for name in sorted(c2ws):
        R, t = c2ws[name][:3, :3], c2ws[name][:3, 3]
        llff = np.stack([R[:, 1], R[:, 0], -R[:, 2]], axis=1)  # OpenCV → LLFF [down, right, back]
        hwf = np.array([SIZE * scale, SIZE * scale, FOCAL * scale])
        rows.append(np.concatenate([np.concatenate([llff, t[:, None], hwf[:, None]], 1).ravel(), [2.0, 6.0]]))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.array(rows))


def check_capture(out: Path, c2ws: dict[str, np.ndarray], size: int, focal: float) -> None:
    """``out`` reads as a COLMAP capture with exactly the given cameras and points on the object."""
    cap = load_capture(out, test_every=0)
    assert cap.format == "colmap" and sorted(f.name for f in cap.frames) == sorted(c2ws)
    for f in cap.frames:
        np.testing.assert_allclose(f.camtoworld, c2ws[f.name], atol=1e-9)
        np.testing.assert_allclose(f.K, [[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], rtol=1e-9)
        assert (f.width, f.height) == (size, size) and f.image_path.is_file() and f.distortion is None
    assert len(cap.points) >= 50
    d = surface_distance(cap.points.astype(np.float64))
    assert np.median(d) < 0.01 * SCENE_SIZE, np.median(d)
    assert np.mean(d < 0.05 * SCENE_SIZE) > 0.9


def test_nerfstudio_poses_through_the_cli(arc, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root, c2ws = arc
    out = tmp_path / "out"
    assert main(["process", str(root / "images"), "--poses", str(root / "transforms.json"), "--out", str(out)]) == 0
    assert "poses: nerfstudio" in capsys.readouterr().out
    check_capture(out, c2ws, SIZE, FOCAL)
    assert (out / "images").resolve() == (root / "images").resolve() and (out / "database.db").is_file()
    hint = json.loads((out / "splatpack_sfm.json").read_text())
    assert hint["images_dir"] == str(root / "images") and hint["points"] == len(load_capture(out).points)


def test_llff_poses_elsewhere_downscaled(arc, tmp_path: Path) -> None:
    """An LLFF file for photos twice the size, away from the photos; SIFT on 1/2-size copies."""
    root, c2ws = arc
    write_llff(tmp_path / "poses/poses_bounds.npy", c2ws, scale=2.0)
    out = tmp_path / "out"
    config = TriangulationConfig(downscale=DownscaleConfig(factor=2))
    stats = triangulate_known_poses(root / "images", tmp_path / "poses/poses_bounds.npy", out, config)
    assert stats["poses"] == "llff" and stats["downscale"] == 2 and stats["images"] == VIEWS
    assert sorted(p.name for p in (out / "images_2").iterdir()) == sorted(c2ws) and not (out / "images").exists()
    check_capture(out, c2ws, SIZE // 2, FOCAL / 2)


def test_blender_and_colmap_pose_files(arc, tmp_path: Path) -> None:
    """The other pose files give the same cameras (read only; the triangulation is the same)."""
    root, c2ws = arc
    frames = [
        {"file_path": f"images/{n[:-4]}", "transform_matrix": (c @ OPENGL_TO_OPENCV).tolist()} for n, c in c2ws.items()
    ]
    blender = root / "transforms_train.json"
    blender.write_text(json.dumps({"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}))
    (root / "transforms_test.json").write_text(json.dumps({"camera_angle_x": CAMERA_ANGLE_X, "frames": frames[:1]}))
    try:
        fmt, got = read_pose_file(blender, root / "images")
    finally:
        blender.unlink()
        (root / "transforms_test.json").unlink()
    ims = [(i + 1, c2ws[n], 1, n) for i, n in enumerate(sorted(c2ws, reverse=True))]
    write_colmap(
        tmp_path / "sparse/0",
        [(1, "PINHOLE", SIZE, SIZE, [FOCAL, FOCAL, SIZE / 2, SIZE / 2])],
        ims,
        np.zeros((0, 3)),
        np.zeros((0, 3), np.uint8),
        "bin",
    )
    fmt2, got2 = read_pose_file(tmp_path / "sparse/0", root / "images")
    assert (fmt, fmt2) == ("blender", "colmap")
    for frames_read in (got, got2):
        assert [f.name for f in frames_read] == sorted(c2ws)
        for f in frames_read:
            np.testing.assert_allclose(f.camtoworld, c2ws[f.name], atol=1e-9)
            np.testing.assert_allclose(f.K[0, 0], FOCAL, rtol=1e-6)


def test_colmap_camera_keeps_distortion() -> None:
    K = np.array([[100.0, 0, 40], [0, 90, 30], [0, 0, 1]])
    plain = colmap_camera(pycolmap, 3, Frame(Path("a.png"), np.eye(4), K, 80, 60))
    assert plain.model_name == "PINHOLE" and plain.camera_id == 3 and list(plain.params) == [100, 90, 40, 30]
    dist = Distortion("SIMPLE_RADIAL", k1=0.1, K_src=K * [[1.1], [1.1], [1]])
    cam = colmap_camera(pycolmap, 1, Frame(Path("a.png"), np.eye(4), K, 80, 60, dist))
    assert cam.model_name == "OPENCV" and (cam.width, cam.height) == (80, 60)
    np.testing.assert_allclose(cam.params, [110, 99, 44, 33, 0.1, 0, 0, 0])


# ------------------------------------------------------------------------------------ errors


def error_line(capsys: pytest.CaptureFixture, *argv: str) -> str:
    assert main(["process", *map(str, argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_pose_count_and_names_must_match(arc, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root, c2ws = arc
    write_llff(tmp_path / "llff/poses_bounds.npy", dict(list(c2ws.items())[:-1]))
    npy = tmp_path / "llff/poses_bounds.npy"
    err = error_line(capsys, root / "images", "--poses", npy, "--out", tmp_path / "o")
    assert f"{npy}: " in err and "10 images" in err and "9 poses" in err and str(root / "images") in err
    photos = tmp_path / "photos"
    shutil.copytree(root / "images", photos)
    shutil.copy(photos / "v00.png", photos / "extra.png")
    err = error_line(capsys, photos, "--poses", root / "transforms.json", "--out", tmp_path / "o")
    assert f"{root / 'transforms.json'}: 11 images" in err and "no pose for extra.png" in err
    (photos / "extra.png").unlink()
    (photos / "v03.png").unlink()
    err = error_line(capsys, photos, "--poses", root / "transforms.json", "--out", tmp_path / "o")
    assert "no image for the poses of v03.png" in err
    assert not (tmp_path / "o").exists()


def test_unreadable_pose_files(arc, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root, _ = arc
    bad = tmp_path / "bad/poses_bounds.npy"
    bad.parent.mkdir()
    bad.write_bytes(b"not numpy")
    assert f"error: {bad}: cannot read poses" in error_line(
        capsys, root / "images", "--poses", bad, "--out", tmp_path / "o"
    )
    js = tmp_path / "transforms.json"
    js.write_text("{")
    assert f"error: {js}: cannot read JSON" in error_line(
        capsys, root / "images", "--poses", js, "--out", tmp_path / "o"
    )
    missing = tmp_path / "nope.json"
    assert f"error: {missing}: path does not exist" in error_line(
        capsys, root / "images", "--poses", missing, "--out", tmp_path / "o"
    )
    assert not (tmp_path / "o").exists()


def test_failed_run_keeps_the_previous_output(arc, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Noise photos have no verified matches: one error line, and the earlier output stays whole;
    a folder that is not ours is never replaced."""
    root, c2ws = arc
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    err = error_line(capsys, root / "images", "--poses", root / "transforms.json", "--out", out)
    assert "not the output of splatpack process" in err and (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    noise = tmp_path / "noise"
    noise.mkdir()
    rng = np.random.default_rng(0)
    for name in sorted(c2ws)[:3]:
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(noise / name)
    write_llff(tmp_path / "llff/poses_bounds.npy", {n: c2ws[n] for n in sorted(c2ws)[:3]}, scale=0.2)
    (out / "splatpack_sfm.json").write_text('{"images_dir": "x"}')
    before = sorted(p.name for p in out.iterdir())
    err = error_line(capsys, noise, "--poses", tmp_path / "llff/poses_bounds.npy", "--out", out)
    assert f"error: {noise}: triangulation found no points in 3 images" in err
    assert sorted(p.name for p in out.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temporary left


def test_downscale_options(arc, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root, _ = arc
    photos = sorted((root / "images").iterdir())
    assert [factor_for_max_size(photos, n) for n in (320, 319, 160, 159, 1)] == [1, 2, 2, 3, 320]
    assert DownscaleConfig(max_size=100).resolve(photos) == 4 and DownscaleConfig().resolve(photos) == 1
    with pytest.raises(SplatpackError, match="not both"):
        DownscaleConfig(factor=2, max_size=10)
    with pytest.raises(SplatpackError, match="integer ≥ 1"):
        DownscaleConfig(factor=0)
    small = write_downscaled(photos[:2], tmp_path / "images_3", 3)
    assert [Image.open(p).size for p in small] == [(107, 107)] * 2
    for flag in ("--downscale", "--max-size"):
        err = error_line(capsys, root / "images", "--out", tmp_path / "o", flag, "0")
        assert f"argument {flag}: expected an integer ≥ 1, got '0'" in err
    err = error_line(capsys, root / "images", "--out", tmp_path / "o", "--downscale", "2", "--max-size", "9")
    assert "not allowed with" in err


def test_fern_llff_subset(shared_dir: Path, tmp_path: Path) -> None:
    """Real photos: 8 of fern's views with their LLFF poses; the points land on the scene that
    COLMAP's own reconstruction (``fern/sparse/0/points3D.bin``, the same world) found."""
    from scipy.spatial import cKDTree

    fern = shared_dir / "scenes/fern"
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((fern / "images_8").iterdir())[:8]:
        shutil.copy(p, photos / p.name)
    np.save(tmp_path / "poses_bounds.npy", np.load(fern / "poses_bounds.npy")[:8])
    stats = triangulate_known_poses(photos, tmp_path / "poses_bounds.npy", tmp_path / "out")
    assert stats["images"] == 8 and stats["points"] > 300 and stats["mean_reprojection_error"] < 1.5
    cap, ref = load_capture(tmp_path / "out", test_every=0), load_capture(fern, downscale=8, test_every=0)
    given = {f.name: f for f in ref.frames}
    for f in cap.frames:
        np.testing.assert_allclose(f.camtoworld, given[f.name].camtoworld, atol=1e-9)
        np.testing.assert_allclose(f.K, given[f.name].K, rtol=1e-9)
    extent = (np.percentile(ref.points, 95, axis=0) - np.percentile(ref.points, 5, axis=0)).max()
    d, _ = cKDTree(ref.points).query(cap.points)
    assert np.median(d) < 0.02 * extent, (np.median(d), extent)


def test_sfm_downscaled_then_rerun(shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``process --downscale 2`` reconstructs from ``images_2`` copies that the model describes; a
    second run with ``--max-size`` replaces the whole output folder."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((shared_dir / "scenes/fern/images_4").iterdir())[:6]:
        shutil.copy(p, photos / p.name)
    out = tmp_path / "out"
    assert main(["process", str(photos), "--out", str(out), "--downscale", "2", "--matching", "sequential"]) == 0
    assert "registered: 6" in capsys.readouterr().out
    assert [Image.open(p).size for p in sorted((out / "images_2").iterdir())] == [(504, 378)] * 6
    cap = load_capture(out, test_every=0)
    assert len(cap.frames) == 6 and {(f.width, f.height) for f in cap.frames} == {(504, 378)}
    assert all(f.image_path.parent == out / "images_2" for f in cap.frames)
    assert main(["process", str(photos), "--out", str(out), "--max-size", "300", "--matching", "sequential"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["database.db", "images_4", "sparse", "splatpack_sfm.json"]
    assert json.loads((out / "splatpack_sfm.json").read_text())["images_dir"] == str(out / "images_4")
