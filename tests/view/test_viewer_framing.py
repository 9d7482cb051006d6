"""The web viewer's start view in a real headless Chromium (software WebGL, see
``tests/viewer_harness.py``): the app opens the scene ``splatpack view`` serves from the framing
in ``config.json`` and the screenshot of its own first view shows the object centred, whole, the
right way up and on the background the run trained with.

* a training run folder (the z-up synthetic capture, white background, an object with a red ball
  above a blue base and far floaters): framed from its training cameras;
* the same object as a bare file in RDF axes (y down), no run: framed from the Gaussians.

(The real captures ``plant.splat`` and ``biker.spz`` take seconds each in software WebGL; their
framing is checked with the CPU renderer in ``test_framing.py``.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from framing_scenes import object_gaussians, write_run
from viewer_harness import missing_requirement, viewer_browser

from splatpack.view.framing import BLENDER_UP, RDF_UP
from splatpack.view.target import resolve_target, scene_points, view_framing

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "splatpack" / "view" / "static"
CENTRE_TOLERANCE = 0.1  # of the image size: how far the object's centroid may sit from the middle
MIN_COVER, MAX_COVER = 0.04, 0.6  # the share of the image the object covers


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    why = missing_requirement()
    if why:
        pytest.skip(why)
    if not (STATIC / "index.html").is_file():
        pytest.skip(f"the web app is not built ({STATIC}); run: cd viewer && npm ci && npm run build")
    from splatpack.captures.synthetic import make_synthetic_scene
    from splatpack.formats.ply import save_ply

    out = tmp_path_factory.mktemp("framing")
    capture = make_synthetic_scene(out / "capture", width=16, height=16, n_train=12, n_test=1)
    run = write_run(out / "run", object_gaussians(BLENDER_UP), capture)
    bare = out / "object_rdf.ply"
    save_ply(object_gaussians(RDF_UP, seed=1), bare)
    return {"run": run, "bare": bare}


def served(paths: dict[str, Path]):
    """(files, framings by name) as ``splatpack view`` computes them for each path."""
    files, framings = [], {}
    for path in paths.values():
        target = resolve_target(path)
        framing, notes = view_framing(target, scene_points(target.file))
        assert notes == []
        files.append(target.file)
        framings[target.file.name] = framing
    return files, framings


@pytest.fixture(scope="module")
def page(files):
    from splatpack.view.server import ViewServer

    paths, framings = served(files)
    with ViewServer(paths, static_dir=STATIC, framings=framings) as server, viewer_browser(server.url) as page:
        page.started = page.open()  # the first file: the run's point_cloud.ply
        page.framings = framings
        yield page


def object_mask(image: np.ndarray, background) -> np.ndarray:
    return np.abs(image - np.asarray(background, np.float32)).max(axis=2) > 0.15


def check_centred(image: np.ndarray, background) -> np.ndarray:
    """The object's pixels: their centroid near the middle, a fair share of the image, and none
    on the border (not cropped)."""
    h, w, _ = image.shape
    corners = image[[0, 0, -1, -1], [0, -1, 0, -1]]
    np.testing.assert_allclose(corners, np.broadcast_to(background, corners.shape), atol=0.05)
    mask = object_mask(image, background)
    cover = mask.mean()
    assert MIN_COVER < cover < MAX_COVER, f"the object covers {cover:.1%} of the view"
    rows, cols = np.nonzero(mask)
    dy, dx = rows.mean() / h - 0.5, cols.mean() / w - 0.5
    assert abs(dx) < CENTRE_TOLERANCE and abs(dy) < CENTRE_TOLERANCE, f"centroid off the middle by {dx:+.2f}, {dy:+.2f}"
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert border.mean() < 0.02, f"{border.mean():.1%} of the border is object: cropped"
    return mask


def check_upright(image: np.ndarray) -> None:
    """The red ball above the blue base, and straight above it."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    red = np.argwhere((r > 0.6) & (g < 0.35) & (b < 0.35))
    blue = np.argwhere((b > 0.6) & (r < 0.4))
    assert len(red) > 20 and len(blue) > 20, (len(red), len(blue))
    (red_row, red_col), (blue_row, blue_col) = red.mean(0), blue.mean(0)
    assert red_row < blue_row - 0.05 * image.shape[0], f"red at row {red_row:.0f}, blue at {blue_row:.0f}"
    assert abs(red_col - blue_col) < 0.1 * image.shape[1]


def test_run_opens_framed_from_its_training_cameras(page):
    assert page.started["error"] is None and page.started["file"] == "point_cloud.ply"
    assert page.started["framing"] == "cameras"
    image = page.view()
    check_centred(image, (1.0, 1.0, 1.0))  # the run trained on white
    check_upright(image)


def test_bare_file_framed_from_its_gaussians(page):
    framing = page.framings["object_rdf.ply"].to_json()
    stats = page.page.evaluate("async (f) => await window.splatpack.load('/files/object_rdf.ply', f)", framing)
    assert stats["error"] is None and stats["framing"] == "gaussians"
    image = page.view()
    check_centred(image, (0.0, 0.0, 0.0))
    check_upright(image)
