"""The web viewer in a real browser: headless Debian Chromium on SwiftShader (software WebGL)
renders splatpack's built app (``splatpack/view/static``, served by
:class:`~splatpack.view.server.ViewServer`) and its screenshots are compared with splatpack's
CPU reference renderer from the same OpenCV cameras.

* a ``.spk`` made by ``splatpack compress`` from ``plant.splat`` and opened by URL (the server's
  ``config.json``, as ``splatpack view`` does), decoded by the app's own ``.spk`` decoder;
* ``.ply``, ``.splat``, ``.spz`` (v4) and ``.sog`` made by ``splatpack export`` (``plant.splat``
  itself for ``.splat``), each dropped onto the page as a ``File`` in a real drop event;
* view-dependent colour: 20,000 of the Gaussians given seeded SH degree 3, as ``.ply`` (Spark's
  reader) and as ``.spk`` (the app's SH packing), which must also beat the same view rendered
  without the SH bands by a clear margin.

Each screenshot must be within 25 dB PSNR of ``render_image(load_scene(file), ...)``; the
values are printed (``pytest -s``) and recorded as test properties.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from viewer_harness import missing_requirement, viewer_browser

from splatpack.formats import load_scene
from splatpack.formats.ply import save_ply

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "splatpack" / "view" / "static"
SIZE = 256  # small views keep software WebGL fast
FOV = 50.0
MIN_PSNR = 25.0
# Which of two orbit views each scene is checked from (alternating, to cover both elevations).
VIEWS = {"spk": (0,), "ply": (1,), "splat": (0,), "spz": (1,), "sog": (0,), "ply_sh3": (0,), "spk_sh3": (1,)}
SH_SUBSET = 20_000  # Gaussians of plant.splat in the SH-degree-3 scenes (keeps `compress` short)
SH_MARGIN_DB = 3.0  # the viewer's SH colours must beat ignoring SH by this much


def splatpack_cli(*args: str) -> None:
    """``splatpack ARGS`` in this process (no interpreter start-up per call)."""
    from splatpack.apps.cli import main

    assert main(list(args)) in (0, None), f"splatpack {' '.join(args)} failed"


@pytest.fixture(scope="module")
def scenes(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    why = missing_requirement()
    if why:
        pytest.skip(why)
    if not (STATIC / "index.html").is_file():
        pytest.skip(f"the web app is not built ({STATIC}); run: cd viewer && npm ci && npm run build")
    src = shared_dir / "splats" / "plant.splat"
    if not src.is_file():
        pytest.skip(f"{src} is absent")
    out = tmp_path_factory.mktemp("viewer_scenes")
    files = {"spk": out / "plant.spk", "splat": src}
    splatpack_cli("compress", str(src), "-o", str(files["spk"]))
    for fmt in ("ply", "spz", "sog"):
        files[fmt] = out / f"plant.{fmt}"
        splatpack_cli("export", str(src), "-o", str(files[fmt]), "--format", fmt)
    files["ply_sh3"] = out / "plant_sh3.ply"
    save_ply(with_sh3(load_scene(src), SH_SUBSET), files["ply_sh3"])
    files["spk_sh3"] = out / "plant_sh3.spk"
    splatpack_cli("compress", str(files["ply_sh3"]), "-o", str(files["spk_sh3"]))
    return files


def with_sh3(gs, n: int):
    """``n`` of the Gaussians with SH degree 3 added: seeded, strong enough that view-dependent
    colour changes the image clearly (so a wrong band order or sign shows)."""
    from splatpack.core.gaussians import GaussianSet

    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(gs), generator=g)[:n]
    band = torch.tensor([0.5] * 3 + [0.3] * 5 + [0.2] * 7)[None, :, None]
    shN = torch.randn(n, 15, 3, generator=g) * band
    return GaussianSet(gs.means[idx], gs.quats[idx], gs.scales[idx], gs.opacities[idx], gs.sh0[idx], shN)


@pytest.fixture(scope="module")
def viewer(scenes: dict[str, Path]):
    from splatpack.view.server import ViewServer

    # The .spk first: the app opens the first file of config.json on start.
    order = ["spk", "ply", "splat", "spz", "sog", "ply_sh3", "spk_sh3"]
    with ViewServer([scenes[k] for k in order], static_dir=STATIC) as server, viewer_browser(server.url) as page:
        page.started = page.open()
        yield page


def compare(page, path: Path, views: tuple[int, ...], record_property) -> list[float]:
    from splatpack.metrics import psnr
    from splatpack.render.camera import orbit_cameras
    from splatpack.render.gaussians import render_image

    gs = load_scene(path)
    poses, K = orbit_cameras(gs.means, 2, SIZE, FOV)
    values = []
    for v in views:
        shot = page.render(poses[v], K, SIZE, SIZE)
        ref = render_image(gs, poses[v], K, SIZE, SIZE, background=(0.0, 0.0, 0.0), backend="cpu")
        assert shot.shape == (SIZE, SIZE, 3)
        value = psnr(torch.from_numpy(shot), ref.float())
        values.append(value)
        record_property(f"psnr_{path.suffix[1:]}_view{v}", round(value, 2))
        print(
            f"viewer PSNR {path.name} view {v}: {value:.2f} dB (browser mean {shot.mean():.3f}, reference {ref.mean():.3f})"
        )
    return values


def test_spk_by_url(viewer, scenes, record_property):
    stats = viewer.started
    assert stats["error"] is None, stats["error"]
    assert stats["file"] == "plant.spk" and stats["format"] == "spk"
    assert stats["numGaussians"] == 113_648
    assert stats["bytes"] == scenes["spk"].stat().st_size
    assert "decodeMs" in stats["timings"]
    for value in compare(viewer, scenes["spk"], VIEWS["spk"], record_property):
        assert value >= MIN_PSNR, "\n".join(viewer.console[-20:])


def drop(viewer, path: Path) -> dict:
    # A scripted camera first (the size the views use): the viewer then draws only on renderOnce,
    # which keeps software GL fast.
    viewer.page.evaluate(
        "() => window.splatpack.setCamera({c2w: [1,0,0,0, 0,1,0,0, 0,0,1,-2, 0,0,0,1],"
        f" fx: {SIZE}, fy: {SIZE}, cx: {SIZE / 2}, cy: {SIZE / 2}, width: {SIZE}, height: {SIZE}}})"
    )
    stats = viewer.drop(f"/files/{path.name}", path.name)
    assert stats["error"] is None, stats["error"]
    assert stats["file"] == path.name
    return stats


@pytest.mark.parametrize("fmt", ["ply", "splat", "spz", "sog"])
def test_format_by_drop(viewer, scenes, fmt, record_property):
    path = scenes[fmt]
    stats = drop(viewer, path)
    assert stats["format"] == fmt
    assert stats["numGaussians"] == 113_648
    for value in compare(viewer, path, VIEWS[fmt], record_property):
        assert value >= MIN_PSNR, "\n".join(viewer.console[-20:])


@pytest.mark.parametrize("key", ["ply_sh3", "spk_sh3"])
def test_view_dependent_colour(viewer, scenes, key, record_property):
    """SH degree 3 through Spark's PLY reader and through the app's .spk packing: the screenshot
    matches the reference, and clearly better than the same scene without its SH bands."""
    from splatpack.core.gaussians import GaussianSet
    from splatpack.metrics import psnr
    from splatpack.render.camera import orbit_cameras
    from splatpack.render.gaussians import render_image

    path = scenes[key]
    stats = drop(viewer, path)
    assert stats["shDegree"] == 3 and stats["numGaussians"] == SH_SUBSET
    (value,) = compare(viewer, path, VIEWS[key], record_property)
    gs = load_scene(path)
    flat = GaussianSet(gs.means, gs.quats, gs.scales, gs.opacities, gs.sh0, gs.shN[:, :0])
    poses, K = orbit_cameras(gs.means, 2, SIZE, FOV)
    c2w = poses[VIEWS[key][0]]
    ref = render_image(gs, c2w, K, SIZE, SIZE, background=(0.0, 0.0, 0.0), backend="cpu")
    no_sh = psnr(render_image(flat, c2w, K, SIZE, SIZE, background=(0.0, 0.0, 0.0), backend="cpu"), ref)
    print(f"  (the same view without SH bands: {no_sh:.2f} dB)")
    assert value >= MIN_PSNR
    assert value >= no_sh + SH_MARGIN_DB


def test_no_errors_in_console(viewer):
    """Nothing the app did logged an error or threw."""
    errors = [m for m in viewer.console if m.startswith(("error", "pageerror"))]
    assert not errors, "\n".join(errors)
