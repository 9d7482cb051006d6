"""Tests of the built-in synthetic scene generator (:mod:`splatpack.captures.synthetic`)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from splatpack.captures import synthetic as syn
from splatpack.core.errors import SplatpackError

SMALL = dict(width=32, height=24, n_train=5, n_test=3)


@pytest.fixture(scope="module")
def default_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scene with default parameters, generated once; its runtime is reported (not asserted)."""
    out = tmp_path_factory.mktemp("syn") / "default"
    t0 = time.perf_counter()
    syn.make_synthetic_scene(out)
    print(f"\nsynthetic default scene (128x128, 48+8 views): {time.perf_counter() - t0:.2f} s")
    return out


def _frames(root: Path, split: str) -> tuple[float, list[dict]]:
    meta = json.loads((root / f"transforms_{split}.json").read_text())
    return meta["camera_angle_x"], meta["frames"]


def _rgba(root: Path, frame: dict) -> np.ndarray:
    return np.asarray(Image.open(root / (frame["file_path"] + ".png")))


def _project(point: np.ndarray, c2w_gl: np.ndarray, angle_x: float, w: int, h: int) -> np.ndarray:
    """Independent pinhole projection: OpenGL c2w -> OpenCV w2c -> pixel (u, v) and depth."""
    c2w = np.asarray(c2w_gl) @ np.diag([1.0, -1.0, -1.0, 1.0])
    x, y, z = (np.linalg.inv(c2w) @ np.append(point, 1.0))[:3]
    f = 0.5 * w / np.tan(0.5 * angle_x)
    return np.array([f * x / z + 0.5 * w, f * y / z + 0.5 * h, z])


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_json_layout_and_cameras(default_scene: Path) -> None:
    stamp = json.loads((default_scene / syn.STAMP_NAME).read_text())
    assert stamp["version"] == syn.GENERATOR_VERSION
    assert stamp["params"] == dict(width=128, height=128, n_train=48, n_test=8, seed=0)
    centers = {}
    for split, n in (("train", 48), ("test", 8)):
        angle, frames = _frames(default_scene, split)
        assert abs(angle - 0.6911) < 1e-3 and len(frames) == n
        assert [f["file_path"] for f in frames] == [f"{split}/r_{k}" for k in range(n)]
        cs = []
        for fr in frames:
            im = Image.open(default_scene / (fr["file_path"] + ".png"))
            assert im.mode == "RGBA" and im.size == (128, 128)
            m = np.asarray(fr["transform_matrix"])
            assert m.shape == (4, 4) and np.allclose(m[3], [0, 0, 0, 1])
            R, c = m[:3, :3], m[:3, 3]
            assert np.allclose(R.T @ R, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1)
            assert np.isclose(np.linalg.norm(c), syn.CAMERA_RADIUS) and c[2] > 0  # upper hemisphere
            assert np.allclose(-R[:, 2], -c / np.linalg.norm(c))  # looks along -z at the origin
            cs.append(c)
        centers[split] = np.array(cs)
    d = np.linalg.norm(centers["test"][:, None] - centers["train"][None], axis=-1)
    assert d.min() > 0.05  # no test view coincides with a train view
    assert np.allclose(centers["test"][:, 2], centers["test"][0, 2])  # test views form a ring
    assert np.ptp(centers["train"][:, 2]) > 2.5  # train views spread over elevations


def test_object_bounds() -> None:
    pts = [np.abs(syn.BOX_MIN), np.abs(syn.BOX_MAX)]
    pts += [np.abs(s.center) + s.radius for s in syn.SPHERES]
    assert np.max(pts) <= 1.2
    corners = np.array([[x, y, z] for x in (-0.6, 0.6) for y in (-0.6, 0.6) for z in (-0.7, -0.35)])
    assert np.linalg.norm(corners, axis=1).max() <= syn._BOUND_R
    assert all(np.linalg.norm(s.center) + s.radius <= syn._BOUND_R for s in syn.SPHERES)


def test_camera_convention_by_projection(default_scene: Path) -> None:
    """Project the floating red sphere (never occluded from above) into every view: the pixel
    is opaque and red, as are pixels of points inside it; the object fits inside every frame."""
    red = next(s for s in syn.SPHERES if s.texture == "red")
    offsets = [np.zeros(3)] + [s * 0.5 * red.radius * v for v in np.eye(3) for s in (1, -1)]
    others = [np.asarray(s.center) for s in syn.SPHERES] + [0.5 * (syn.BOX_MIN + syn.BOX_MAX)]
    n_views = 0
    for split in ("train", "test"):
        angle, frames = _frames(default_scene, split)
        for fr in frames:
            im = _rgba(default_scene, fr)
            h, w = im.shape[:2]
            for off in offsets:
                u, v, z = _project(np.asarray(red.center) + off, fr["transform_matrix"], angle, w, h)
                assert z > 0 and 0 <= u < w and 0 <= v < h
                r, g, b, a = im[int(v), int(u)].astype(int)
                assert a == 255, (fr["file_path"], off)
                red_hue = r > 50 and r - b > 0.4 * r and g < 0.75 * r  # also under the white highlight
                assert red_hue, (fr["file_path"], off, (r, g, b))
            for p in others:  # silhouette consistency: every object centre is covered everywhere
                u, v, _ = _project(p, fr["transform_matrix"], angle, w, h)
                assert im[int(v), int(u), 3] == 255, fr["file_path"]
            border = np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]])
            assert (border[:, 3] == 0).all()  # object fully inside the frame, background clear
            assert 0.08 < (im[..., 3] > 0).mean() < 0.6
            n_views += 1
    assert n_views == 56


def test_antialiased_alpha_and_background(default_scene: Path) -> None:
    im = _rgba(default_scene, _frames(default_scene, "train")[1][0])
    a = im[..., 3]
    assert set(np.unique(a)) <= {0, 64, 128, 191, 255}  # 2x2 supersampling coverage levels
    assert ((a > 0) & (a < 255)).any()  # soft edges exist
    assert (im[a == 0][:, :3] == 0).all()


def test_deterministic(tmp_path: Path) -> None:
    a = syn.make_synthetic_scene(tmp_path / "a", **SMALL)
    b = syn.make_synthetic_scene(tmp_path / "b", **SMALL)
    fa, fb = _all_files(a), _all_files(b)
    assert len(fa) == 5 + 3 + 3 and fa == fb
    c = syn.make_synthetic_scene(tmp_path / "c", **SMALL, seed=1)
    assert _all_files(c)["transforms_train.json"] != fa["transforms_train.json"]


def test_reuse_and_regenerate(tmp_path: Path) -> None:
    out = tmp_path / "scene"
    assert syn.make_synthetic_scene(out, **SMALL) == out.absolute()
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    time.sleep(0.02)
    syn.make_synthetic_scene(out, **SMALL)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes  # reused untouched
    syn.make_synthetic_scene(out, **{**SMALL, "n_test": 2})  # other parameters: regenerated
    assert len(_frames(out, "test")[1]) == 2 and not (out / "test" / "r_2.png").exists()
    (out / "train" / "r_3.png").unlink()  # incomplete: regenerated
    syn.make_synthetic_scene(out, **{**SMALL, "n_test": 2})
    assert (out / "train" / "r_3.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]  # no temp folders left


def test_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = syn._write_split

    def failing(root: Path, split: str, *args: object) -> None:
        real(root, split, *args)
        if split == "test":
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(syn, "_write_split", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        syn.make_synthetic_scene(tmp_path / "scene", **SMALL)
    assert list(tmp_path.iterdir()) == []  # neither the scene nor a temp folder
    monkeypatch.setattr(syn, "_write_split", real)
    syn.make_synthetic_scene(tmp_path / "scene", **SMALL)
    before = _all_files(tmp_path / "scene")
    monkeypatch.setattr(syn, "_write_split", failing)
    with pytest.raises(RuntimeError):
        syn.make_synthetic_scene(tmp_path / "scene", **{**SMALL, "seed": 3})
    assert _all_files(tmp_path / "scene") == before  # the previous scene survives intact
    assert [p.name for p in tmp_path.iterdir()] == ["scene"]


def test_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SplatpackError, match="not a splatpack synthetic scene"):
        syn.make_synthetic_scene(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    syn.make_synthetic_scene(tmp_path / "empty", **SMALL)  # an empty folder is fine
    with pytest.raises(SplatpackError):
        syn.make_synthetic_scene(tmp_path / "x", width=0)


def test_default_scene_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_scene: Path) -> None:
    assert syn.DEFAULT_SCENE_NAME == "default"
    monkeypatch.delenv("SPLATPACK_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert syn.default_scene_dir() == tmp_path / "home" / ".cache" / "splatpack" / "default"
    monkeypatch.setenv("SPLATPACK_CACHE", str(tmp_path / "cache"))
    assert syn.default_scene_dir() == tmp_path / "cache" / "default"
    shutil.copytree(default_scene, tmp_path / "cache" / "default")  # a cached default scene
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")}
    assert syn.ensure_default_scene() == tmp_path / "cache" / "default"
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")} == mtimes
    calls = []
    monkeypatch.setattr(syn, "make_synthetic_scene", lambda d, **kw: calls.append((d, kw)) or d)
    monkeypatch.setenv("SPLATPACK_CACHE", str(tmp_path / "fresh"))
    syn.ensure_default_scene()
    assert calls == [(tmp_path / "fresh" / "default", {})]
