"""Structure from motion (:func:`splatpack.captures.sfm.run_sfm`): errors and a real run on fern images_8."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from splatpack.captures import load_capture
from splatpack.core.errors import CaptureError, SplatpackError

pycolmap = pytest.importorskip("pycolmap", reason="structure from motion needs pycolmap")
from splatpack.captures.sfm import run_sfm  # noqa: E402


def test_missing_folder_and_too_few_images(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="images folder does not exist") as e:
        run_sfm(tmp_path / "nope", tmp_path / "out")
    assert str(tmp_path / "nope") in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptureError, match="at least 2 images, found 0"):
        run_sfm(tmp_path / "empty", tmp_path / "out")


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(SplatpackError, match="matching"):
        run_sfm(tmp_path, tmp_path / "out", matching="vocab")
    with pytest.raises(SplatpackError, match="camera_model"):
        run_sfm(tmp_path, tmp_path / "out", camera_model="OPENCV_FISHEYE")


def test_reconstruction_failure(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(3):  # unrelated noise: no geometrically verified matches
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(CaptureError, match="reconstruction failed") as e:
        run_sfm(tmp_path, tmp_path / "out")
    assert str(tmp_path) in str(e.value)


def test_sfm_fern(shared_dir: Path, tmp_path: Path) -> None:
    images = shared_dir / "scenes/fern/images_8"
    stats = run_sfm(images, tmp_path / "sfm")
    assert stats["registered"] == stats["images"] == 20
    assert stats["points"] > 1000 and 0 < stats["mean_reprojection_error"] < 1.5
    assert (tmp_path / "sfm/sparse/0/images.bin").is_file()
    assert json.loads((tmp_path / "sfm/splatpack_sfm.json").read_text())["images_dir"] == str(images)
    cap = load_capture(tmp_path / "sfm")
    assert cap.format == "colmap" and len(cap.frames) == 20 and all(f.image_path.is_file() for f in cap.frames)
    assert (cap.train[0].width, cap.train[0].height) == (504, 378)
    # without the symlink the json hint still finds the images
    (tmp_path / "sfm/images").unlink()
    assert len(load_capture(tmp_path / "sfm").frames) == 20
    # same relative rotations as the reference model in shared/ (up to the SfM noise)
    ref = {f.name: f.camtoworld[:3, :3] for f in load_capture(shared_dir / "scenes/fern/colmap_images_8").frames}
    got = {f.name: f.camtoworld[:3, :3] for f in cap.frames}
    first = min(ref)
    for n in ref:
        d = (ref[first].T @ ref[n]).T @ (got[first].T @ got[n])
        assert math.degrees(math.acos(np.clip((np.trace(d) - 1) / 2, -1, 1))) < 1.0


def test_sfm_sequential_rerun(shared_dir: Path, tmp_path: Path) -> None:
    """Sequential matching on a fern subset; a second run into the same folder replaces the model."""
    sub = tmp_path / "imgs"
    sub.mkdir()
    for p in sorted((shared_dir / "scenes/fern/images_8").iterdir())[:6]:
        shutil.copy(p, sub / p.name)
    for _ in range(2):
        stats = run_sfm(sub, tmp_path / "out", matching="sequential")
        assert stats["registered"] == 6 and stats["models"] == 1
    assert len(load_capture(tmp_path / "out", test_every=0).train) == 6
