"""Capture readers: synthetic COLMAP/Blender/nerfstudio/LLFF fixtures, bad input, undistortion, real data."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from capture_fixtures import make_blender, make_colmap, write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from splatpack.captures import Distortion, Frame, detect_capture_format, load_capture, load_image
from splatpack.captures.colmap import read_cameras, read_images, read_points3D
from splatpack.captures.images import split_frames
from splatpack.core.errors import CaptureError


@pytest.mark.parametrize("fmt", ["bin", "txt"])
def test_colmap_model_roundtrip(tmp_path: Path, fmt: str) -> None:
    c2ws, xyz, rgb = make_colmap(tmp_path, fmt)
    assert detect_capture_format(tmp_path) == "colmap"
    cap = load_capture(tmp_path, test_every=2)
    assert cap.format == "colmap" and cap.name == tmp_path.name
    assert [f.name for f in cap.test] == ["img000.png", "img002.png", "img004.png"]
    assert [f.name for f in cap.train] == ["img001.png", "img003.png"]
    for f in cap.frames:
        np.testing.assert_allclose(f.camtoworld, c2ws[f.name], atol=1e-9)
        np.testing.assert_allclose(f.K, [[20, 0, 8], [0, 21, 6], [0, 0, 1]])
        assert (f.width, f.height, f.distortion) == (16, 12, None)
        assert f.image_path.is_file()
    np.testing.assert_allclose(cap.points, xyz, atol=1e-6)
    np.testing.assert_array_equal(cap.point_colors, rgb)
    assert cap.points.dtype == np.float32 and cap.point_colors.dtype == np.uint8


def test_colmap_model_folder_and_file_paths(tmp_path: Path) -> None:
    make_colmap(tmp_path)
    for p in (tmp_path / "sparse/0", tmp_path / "sparse/0/cameras.bin"):
        assert detect_capture_format(p) == "colmap"
        assert len(load_capture(p).frames) == 5


def test_colmap_downscale_resizes_or_uses_images_n(tmp_path: Path) -> None:
    make_colmap(tmp_path, size=(32, 24))
    cap = load_capture(tmp_path, downscale=2)  # no images_2: resized on load
    f = cap.train[0]
    assert (f.width, f.height) == (16, 12) and f.image_path.parent.name == "images"
    np.testing.assert_allclose(f.K, [[10, 0, 4], [0, 10.5, 3], [0, 0, 1]])
    assert load_image(f).shape == (12, 16, 3)
    for p in (tmp_path / "images").iterdir():
        write_png(tmp_path / "images_2" / p.name, 16, 12)
    f = load_capture(tmp_path, downscale=2).train[0]
    assert f.image_path.parent.name == "images_2" and (f.width, f.height) == (16, 12)
    np.testing.assert_allclose(f.K[0], [10, 0, 4])


def test_colmap_images_found_in_parent_or_override(tmp_path: Path) -> None:
    root = tmp_path / "colmap_images_8"
    make_colmap(root, images=None)
    make_colmap(tmp_path / "elsewhere", images="pics")
    with pytest.raises(CaptureError, match="no image folder") as e:
        load_capture(root)
    assert str(root) in str(e.value)
    cap = load_capture(root, images_dir=tmp_path / "elsewhere/pics")
    assert cap.train[0].image_path.parent == (tmp_path / "elsewhere/pics").absolute()
    make_colmap(tmp_path / "unused", images="images_8")  # writes tmp_path/unused/images_8
    (tmp_path / "unused/images_8").rename(tmp_path / "images_8")
    cap = load_capture(root)
    assert cap.extra["images_dir"] == str((tmp_path / "images_8").absolute())
    assert all(f.image_path.is_file() for f in cap.frames)


def test_colmap_distorted_camera(tmp_path: Path) -> None:
    make_colmap(tmp_path, model="SIMPLE_RADIAL")
    f = load_capture(tmp_path).train[0]
    assert f.distortion is not None and f.distortion.model == "SIMPLE_RADIAL"
    assert f.distortion.k1 == pytest.approx(0.05) and f.distortion.k2 == 0
    np.testing.assert_allclose(f.distortion.K_src, f.K)
    assert load_image(f).shape == (12, 16, 3)


# ---------------------------------------------------------------------- bad COLMAP input


def _error(path: Path, match: str, **kw) -> CaptureError:
    with pytest.raises(CaptureError, match=match) as e:
        load_capture(path, **kw)
    return e.value


@pytest.mark.parametrize("name", ["cameras.bin", "images.bin", "points3D.bin"])
def test_truncated_bin(tmp_path: Path, name: str) -> None:
    make_colmap(tmp_path)
    f = tmp_path / "sparse/0" / name
    f.write_bytes(f.read_bytes()[:-5])
    assert str(f) in str(_error(tmp_path, "truncated|corrupt"))


def test_every_truncation_and_trailing_bytes_raise(tmp_path: Path) -> None:
    make_colmap(tmp_path, n=2)
    for name, reader in (("cameras.bin", read_cameras), ("images.bin", read_images), ("points3D.bin", read_points3D)):
        f = tmp_path / "sparse/0" / name
        data = f.read_bytes()
        for cut in range(len(data)):
            f.write_bytes(data[:cut])
            with pytest.raises(CaptureError):
                reader(f)
        f.write_bytes(data + b"\0")
        with pytest.raises(CaptureError, match="unexpected bytes"):
            reader(f)
        f.write_bytes(data)


@pytest.mark.parametrize("name", ["cameras.bin", "images.bin", "points3D.bin"])
def test_garbage_bin(tmp_path: Path, name: str) -> None:
    make_colmap(tmp_path)
    f = tmp_path / "sparse/0" / name
    f.write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    assert str(f) in str(_error(tmp_path, "corrupt|truncated|unknown"))


@pytest.mark.parametrize("name", ["cameras.bin", "images.bin", "points3D.bin"])
def test_forged_huge_count(tmp_path: Path, name: str) -> None:
    make_colmap(tmp_path)
    f = tmp_path / "sparse/0" / name
    f.write_bytes(struct.pack("<Q", 10**9) + f.read_bytes()[8:])
    assert str(f) in str(_error(tmp_path, "header claims 1000000000"))


def test_forged_huge_track_length(tmp_path: Path) -> None:
    make_colmap(tmp_path)
    f = tmp_path / "sparse/0/points3D.bin"
    data = bytearray(f.read_bytes())
    data[8 + 8 + 24 + 3 + 8 : 8 + 8 + 24 + 3 + 16] = struct.pack("<Q", 10**12)
    f.write_bytes(bytes(data))
    assert str(f) in str(_error(tmp_path, "does not fit"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_bin_never_crashes(tmp_path: Path, data: st.DataObject) -> None:
    """Any byte mutation either still parses or raises CaptureError (never another exception)."""
    if not (tmp_path / "sparse/0/images.bin").exists():
        make_colmap(tmp_path, n=2, images=None)
    for name, reader in (("cameras.bin", read_cameras), ("images.bin", read_images), ("points3D.bin", read_points3D)):
        raw = bytearray((tmp_path / "sparse/0" / name).read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        bad = tmp_path / f"mutated_{name}"
        bad.write_bytes(bytes(raw))
        try:
            reader(bad)
        except CaptureError as e:
            assert str(bad) in str(e)


@pytest.mark.parametrize("fmt", ["bin", "txt"])
def test_unsupported_camera_model(tmp_path: Path, fmt: str) -> None:
    make_colmap(tmp_path, fmt, model="OPENCV_FISHEYE", params=[20.0, 20.0, 8.0, 6.0, 0.1, 0, 0, 0])
    err = _error(tmp_path, "unsupported camera model OPENCV_FISHEYE")
    assert str(tmp_path / "sparse/0" / f"cameras.{fmt}") in str(err)


def test_unknown_camera_model_txt_and_bad_line(tmp_path: Path) -> None:
    make_colmap(tmp_path, "txt")
    cams = tmp_path / "sparse/0/cameras.txt"
    cams.write_text("1 FISHEYE 16 12 20 8 6\n")
    assert str(cams) in str(_error(tmp_path, "unsupported camera model FISHEYE"))
    cams.write_text("1 PINHOLE 16 twelve 20 20 8 6\n")
    assert str(cams) in str(_error(tmp_path, "line 1: cannot parse camera"))
    cams.write_text("1 PINHOLE 16 12 20 20 8\n")
    assert str(cams) in str(_error(tmp_path, "needs 4 params"))


def test_missing_image(tmp_path: Path) -> None:
    make_colmap(tmp_path)
    (tmp_path / "images/img003.png").unlink()
    assert str(tmp_path / "images/img003.png") in str(_error(tmp_path, "cannot read image"))


def test_missing_camera_reference(tmp_path: Path) -> None:
    make_colmap(tmp_path, "txt")
    f = tmp_path / "sparse/0/images.txt"
    f.write_text(f.read_text().replace(" 1 img000.png", " 7 img000.png"))
    assert str(f) in str(_error(tmp_path, "missing camera 7"))


# --------------------------------------------------------------------- Blender / nerfstudio


def test_blender(tmp_path: Path) -> None:
    poses = make_blender(tmp_path)
    assert detect_capture_format(tmp_path) == "blender" == detect_capture_format(tmp_path / "transforms_train.json")
    cap = load_capture(tmp_path)
    assert (len(cap.train), len(cap.test), cap.white_background, cap.points, cap.near_far) == (3, 2, True, None, None)
    f = cap.train[1]
    fx = 0.5 * 2 / math.tan(0.4)
    np.testing.assert_allclose(f.K, [[fx, 0, 1], [0, fx, 1], [0, 0, 1]])
    np.testing.assert_allclose(f.camtoworld, poses["train/r_1"] @ np.diag([1, -1, -1, 1]))
    img = load_image(f)
    assert img.shape == (2, 2, 4) and img.dtype == np.float32 and img.min() >= 0 and img.max() <= 1


def test_blender_val_as_test_and_bad_json(tmp_path: Path) -> None:
    make_blender(tmp_path)
    (tmp_path / "transforms_test.json").rename(tmp_path / "transforms_val.json")
    assert len(load_capture(tmp_path).test) == 2
    (tmp_path / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.8}))
    assert str(tmp_path / "transforms_train.json") in str(_error(tmp_path, "no frames"))
    (tmp_path / "transforms_train.json").write_text("{not json")
    assert str(tmp_path / "transforms_train.json") in str(_error(tmp_path, "cannot read JSON"))


def test_blender_missing_image(tmp_path: Path) -> None:
    make_blender(tmp_path)
    (tmp_path / "test/r_1.png").unlink()
    assert str(tmp_path / "test/r_1.png") in str(_error(tmp_path, "cannot read image"))


def _ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    from plyfile import PlyData, PlyElement

    v = np.empty(len(xyz), dtype=[(k, "f4") for k in "xyz"] + [(k, "u1") for k in ("red", "green", "blue")])
    for i, k in enumerate("xyz"):
        v[k] = xyz[:, i]
    for i, k in enumerate(("red", "green", "blue")):
        v[k] = rgb[:, i]
    PlyData([PlyElement.describe(v, "vertex")]).write(str(path))


def test_nerfstudio(tmp_path: Path) -> None:
    frames = []
    for i in range(10):
        m = np.eye(4)
        m[:3, 3] = [i, 0, 0]
        fr = {"file_path": f"images/frame_{i:05d}.png", "transform_matrix": m.tolist()}
        if i == 3:
            fr.update(fl_x=30.0, fl_y=31.0)  # per-frame intrinsics win
        frames.append(fr)
        write_png(tmp_path / fr["file_path"], 16, 12, seed=i)
        write_png(tmp_path / "images_2" / f"frame_{i:05d}.png", 8, 6, seed=i)
    frames.reverse()  # sorted by file path on load
    meta = dict(camera_model="OPENCV", fl_x=20.0, fl_y=20.0, cx=8.0, cy=6.0, w=16, h=12)
    meta.update(k1=0.01, k2=0.0, p1=0.001, p2=0.0)
    xyz, rgb = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32), np.full((7, 3), 9, np.uint8)
    _ply(tmp_path / "sparse_pc.ply", xyz, rgb)
    (tmp_path / "transforms.json").write_text(json.dumps({**meta, "frames": frames, "ply_file_path": "sparse_pc.ply"}))
    assert detect_capture_format(tmp_path) == "nerfstudio"
    cap = load_capture(tmp_path, test_every=4)
    assert [f.name for f in cap.test] == ["frame_00000.png", "frame_00004.png", "frame_00008.png"]
    f3 = next(f for f in cap.frames if f.name == "frame_00003.png")
    np.testing.assert_allclose(f3.K, [[30, 0, 8], [0, 31, 6], [0, 0, 1]])
    np.testing.assert_allclose(f3.camtoworld[:3, 3], [3, 0, 0])
    np.testing.assert_allclose(f3.camtoworld[:3, :3], np.diag([1, -1, -1]))
    assert f3.distortion == Distortion("OPENCV", 0.01, 0.0, 0.001, 0.0, K_src=f3.distortion.K_src)
    np.testing.assert_allclose(cap.points, xyz)
    np.testing.assert_array_equal(cap.point_colors, rgb)
    small = load_capture(tmp_path, downscale=2).train[0]
    assert small.image_path.parent.name == "images_2" and (small.width, small.height) == (8, 6)
    np.testing.assert_allclose(small.K[0], [10, 0, 4])
    assert load_image(small).shape == (6, 8, 3)


def test_nerfstudio_bad_input(tmp_path: Path) -> None:
    js = tmp_path / "transforms.json"
    js.write_text(json.dumps({"fl_x": 10, "frames": []}))
    assert str(js) in str(_error(tmp_path, "no frames"))
    write_png(tmp_path / "a.png", 4, 4)
    fr = {"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}
    js.write_text(json.dumps({"fl_x": 10, "camera_model": "OPENCV_FISHEYE", "frames": [fr, fr]}))
    assert str(js) in str(_error(tmp_path, "unsupported camera_model OPENCV_FISHEYE"))
    js.write_text(json.dumps({"frames": [fr, fr]}))
    assert str(js) in str(_error(tmp_path, "intrinsics"))
    js.write_text(json.dumps({"fl_x": 10, "frames": [fr, {**fr, "transform_matrix": [[1, 2]]}]}))
    assert str(js) in str(_error(tmp_path, "bad transform_matrix"))


# ------------------------------------------------------------------ detection and helpers


def test_detect_format_errors(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="path does not exist") as e:
        detect_capture_format(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)
    with pytest.raises(CaptureError, match="path does not exist"):
        load_capture(tmp_path / "nope")
    with pytest.raises(CaptureError, match=r"transforms_train\.json.*poses_bounds\.npy.*sparse/0/cameras\.bin") as e:
        detect_capture_format(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_split_frames() -> None:
    train, test = split_frames(list(range(10)), 8, Path("x"))
    assert test == [0, 8] and train == [1, 2, 3, 4, 5, 6, 7, 9]
    assert split_frames(list(range(3)), 0, Path("x")) == ([0, 1, 2], [])
    with pytest.raises(CaptureError, match="no training frames"):
        split_frames([0], 8, Path("x"))
    with pytest.raises(CaptureError, match="test_every"):
        split_frames([0, 1], 1, Path("x"))


def test_load_image_resize_alpha_and_errors(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", 8, 8, channels=4)
    f = Frame(tmp_path / "a.png", np.eye(4), np.eye(3), 4, 2)
    img = load_image(f)
    assert img.shape == (2, 4, 4) and img.dtype == np.float32
    Image.fromarray(np.full((4, 4), 128, np.uint8)).save(tmp_path / "gray.png")
    g = load_image(Frame(tmp_path / "gray.png", np.eye(4), np.eye(3), 4, 4))
    assert g.shape == (4, 4, 3) and np.allclose(g, 128 / 255)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    for name in ("bad.png", "missing.png"):
        with pytest.raises(CaptureError, match="cannot read image") as e:
            load_image(Frame(tmp_path / name, np.eye(4), np.eye(3), 4, 4))
        assert str(tmp_path / name) in str(e.value)


def _distort(x, y, d: Distortion):
    r2 = x * x + y * y
    radial = 1 + d.k1 * r2 + d.k2 * r2 * r2
    return (
        x * radial + 2 * d.p1 * x * y + d.p2 * (r2 + 2 * x * x),
        y * radial + d.p1 * (r2 + 2 * y * y) + 2 * d.p2 * x * y,
    )


@pytest.mark.parametrize(
    "dist",
    [
        Distortion("SIMPLE_RADIAL", k1=-0.08),
        Distortion("RADIAL", k1=0.06, k2=-0.02),
        Distortion("OPENCV", k1=-0.05, k2=0.01, p1=0.004, p2=-0.003),
    ],
)
def test_undistortion_recovers_pinhole_image(tmp_path: Path, dist: Distortion) -> None:
    w, h = 96, 72
    K = np.array([[80.0, 0, 48], [0, 80, 36], [0, 0, 1]])

    def scene(x, y):  # a smooth pattern on the normalised image plane
        return 0.5 + 0.35 * np.sin(4 * x + 1) * np.cos(5 * y)

    v, u = np.mgrid[0:h, 0:w] + 0.5
    xd, yd = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    x, y = xd.copy(), yd.copy()
    for _ in range(50):  # invert the distortion by fixed-point iteration
        dx, dy = _distort(x, y, dist)
        x, y = x - (dx - xd), y - (dy - yd)
    distorted = scene(x, y)
    pinhole = scene((u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1])
    Image.fromarray(np.round(distorted * 255).astype(np.uint8)).convert("RGB").save(tmp_path / "d.png")
    dist.K_src = K.copy()
    out = load_image(Frame(tmp_path / "d.png", np.eye(4), K, w, h, dist))[..., 0]
    inner = (slice(6, -6), slice(6, -6))
    err = np.abs(out - pinhole)[inner].max()
    assert err < 0.02, err
    assert np.abs(distorted - pinhole)[inner].max() > 3 * err  # the distortion mattered


# ----------------------------------------------------------------------------- real data


def _in_view_fraction(cap) -> float:
    """Mean over frames of the fraction of SfM points in front of the camera and inside the image."""
    fr = []
    for f in cap.frames:
        w2c = f.viewmat()
        X = cap.points.astype(np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
        uv = X[:, :2] / X[:, 2:] * np.diag(f.K)[:2] + f.K[:2, 2]
        ok = (X[:, 2] > 0) & (uv >= 0).all(1) & (uv[:, 0] < f.width) & (uv[:, 1] < f.height)
        fr.append(ok.mean())
    return float(np.mean(fr))


def test_real_lego(shared_dir: Path) -> None:
    root = shared_dir / "scenes/lego"
    cap = load_capture(root, downscale=4)
    assert (cap.format, len(cap.train), len(cap.test), cap.white_background) == ("blender", 100, 25, True)
    angle = json.loads((root / "transforms_train.json").read_text())["camera_angle_x"]
    f = cap.test[0]
    assert (f.width, f.height) == (200, 200)
    fx = 0.5 * 200 / math.tan(0.5 * angle)
    np.testing.assert_allclose(f.K, [[fx, 0, 100], [0, fx, 100], [0, 0, 1]])
    img = load_image(f)
    assert img.shape == (200, 200, 4) and 0.0 < img[..., 3].mean() < 1.0
    # cameras look at the object at the origin: the +z (forward) axis points towards it
    for f in cap.frames:
        c = f.camtoworld[:3, 3]
        assert np.dot(f.camtoworld[:3, 2], -c / np.linalg.norm(c)) > 0.9


def test_real_fern_llff(shared_dir: Path) -> None:
    cap = load_capture(shared_dir / "scenes/fern", downscale=8)
    assert cap.format == "llff" and len(cap.frames) == 20 and (len(cap.train), len(cap.test)) == (17, 3)
    assert all((f.width, f.height) == (504, 378) for f in cap.frames)
    assert cap.points.shape == (10091, 3) and cap.near_far is not None and 0 < cap.near_far[0] < cap.near_far[1]
    assert load_image(cap.train[0]).shape == (378, 504, 3)
    # poses and COLMAP points share one world: almost all points project into every image
    assert _in_view_fraction(cap) > 0.9
    for f in cap.frames:
        assert np.allclose(f.camtoworld[:3, :3] @ f.camtoworld[:3, :3].T, np.eye(3), atol=1e-5)
        assert np.linalg.det(f.camtoworld[:3, :3]) > 0


def test_real_fern_llff_matches_colmap_model(shared_dir: Path) -> None:
    llff = load_capture(shared_dir / "scenes/fern", downscale=8)
    col = load_capture(shared_dir / "scenes/fern/colmap_images_8")
    assert col.format == "colmap" and len(col.frames) == 20 and all(f.image_path.is_file() for f in col.frames)
    assert col.extra["images_dir"].endswith("fern/images_8")
    assert (col.train[0].width, col.train[0].height) == (504, 378)
    assert col.points.shape == (1835, 3) and _in_view_fraction(col) > 0.9
    assert load_image(col.train[0]).shape == (378, 504, 3)
    a = {f.name: f.camtoworld[:3, :3] for f in llff.frames}
    b = {f.name: f.camtoworld[:3, :3] for f in col.frames}
    names = sorted(a)
    assert names == sorted(b)
    worst = 0.0  # relative rotations between every pair agree (independent reconstructions)
    for i, m in enumerate(names):
        for n in names[i + 1 :]:
            d = (a[m].T @ a[n]).T @ (b[m].T @ b[n])
            worst = max(worst, math.degrees(math.acos(np.clip((np.trace(d) - 1) / 2, -1, 1))))
    assert worst < 1.0, worst
