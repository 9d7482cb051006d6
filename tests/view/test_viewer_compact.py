"""Compact (colour-field) ``.spk`` scenes in the web viewer, and progressive ``.spk`` display, in a
real headless Chromium (software WebGL, see ``tests/viewer_harness.py``).

* A compact scene with a hash-grid colour field, written by ``write_compact`` from synthetic
  streams (``quantize_compact`` of random positions, codebooks and a randomised field), is opened
  by URL; screenshots from two fixed cameras must be within 25 dB PSNR of splatpack's CPU render
  of the same decoded scene (``render_compact`` of ``dequantize(read_compact(...))``, colours from
  the field for that camera, black background). The two views must differ in colour where a
  per-view mismatch would show: the viewer's first view, re-rendered after the second, must
  still match the first view's reference (the colours follow the camera, not the last rest).
* ``decodeSpk``'s ``onPartial`` (Node): called once, after the geometry sections and before the
  colour sections, with the final scene's geometry (and a grid scene's DC colours); the final
  scene is the same with or without the callback.
* Progressive display: the app records the load phases it drew (``stats().phases``); a ``.spk``
  load must draw the "partial" scene (its geometry, before the colour sections are decoded: the
  compact scene's colour field, a grid scene's SH rest) and then the "final" one, each with
  every Gaussian — for the compact scene and for a small grid scene with SH degree 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from viewer_harness import missing_requirement, viewer_browser

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "splatpack" / "view" / "static"
SPK_DECODER = ROOT / "viewer" / "src" / "spk" / "index.js"
N = 4000  # Gaussians in the compact scene
N_GRID = 2000  # Gaussians in the grid scene
SIZE = 192  # small views keep software WebGL fast
FOV = 50.0
MIN_PSNR = 25.0


def synthetic_compact_code(n: int, seed: int = 0):
    """A compact scene from synthetic streams: Gaussians in an ellipsoidal cloud and a colour
    field (dense and hashed levels) randomised strongly enough that colours depend on the view."""
    from splatpack.codecs.compact import CompactCodecConfig, quantize_compact
    from splatpack.compress.colour_field import ColourField, ColourFieldConfig
    from splatpack.compress.hash_grid import HashGridConfig

    g = torch.Generator().manual_seed(seed)
    grid = HashGridConfig(n_levels=6, n_features_per_level=2, log2_hashmap_size=10, base_resolution=4)
    field = ColourField(ColourFieldConfig(grid=grid, hidden=32), [-2.0, -1.5, -2.0], [2.0, 1.5, 2.0])
    with torch.no_grad():
        field.hash_params.copy_(torch.randn(field.hash_params.shape, generator=g) * 0.3)
        for lin in field.linears():  # seeded (not torch's global generator)
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * (2.0 / lin.in_features**0.5))
            lin.bias.zero_()
    books_s = torch.randn(3, 16, 3, generator=g) * 0.15
    books_s[0] -= 3.0  # the stages add up: log-scales about -3 (splats ~5 % of the cloud's radius)
    books_r = torch.randn(3, 16, 4, generator=g) * 0.3
    means = torch.randn(n, 3, generator=g) * torch.tensor([0.8, 0.6, 0.8])
    opacities = 0.3 + 0.7 * torch.rand(n, generator=g)
    return quantize_compact(
        means,
        opacities,
        torch.randint(0, 16, (n, 3), generator=g),
        torch.randint(0, 16, (n, 3), generator=g),
        books_s,
        books_r,
        CompactCodecConfig(),
        field=field,
        meta={"scale_space": "log"},
    )


def synthetic_grid_scene(path: Path, n: int, seed: int = 0) -> None:
    """A grid scene (SH degree 1, unsorted grid: no PLAS) of Gaussians on a noisy sphere."""
    from splatpack.codecs.grid import GridCodecConfig, write_grid_scene
    from splatpack.core.gaussians import GaussianSet

    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    p = v / np.linalg.norm(v, axis=1, keepdims=True)
    gs = GaussianSet.from_numpy(
        means=p + 0.05 * rng.normal(size=(n, 3)),
        quats=rng.normal(size=(n, 4)),
        scales=np.full((n, 3), -3.0) + 0.3 * rng.normal(size=(n, 3)),
        opacities=rng.normal(size=n),
        sh0=0.8 * p,
        shN=0.2 * rng.normal(size=(n, 3, 3)),
    )
    write_grid_scene(path, gs, GridCodecConfig.from_quality(6, sort=False))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from splatpack.codecs.compact import write_compact

    out = tmp_path_factory.mktemp("viewer_compact")
    files = {"compact": out / "field.spk", "grid": out / "grid_sh1.spk"}
    write_compact(files["compact"], synthetic_compact_code(N))
    synthetic_grid_scene(files["grid"], N_GRID)
    return files


@pytest.fixture(scope="module")
def scene(scenes: dict[str, Path]) -> Path:
    return scenes["compact"]


@pytest.fixture(scope="module")
def viewer(scenes: dict[str, Path], scene: Path):
    from splatpack.view.server import ViewServer

    why = missing_requirement()
    if why:
        pytest.skip(why)
    if not (STATIC / "index.html").is_file():
        pytest.skip(f"the web app is not built ({STATIC}); run: cd viewer && npm ci && npm run build")

    with ViewServer(list(scenes.values()), static_dir=STATIC) as server, viewer_browser(server.url) as page:
        page.started = page.open(f"?url=/files/{scene.name}")
        yield page


def cameras(scene_path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Two orbit views (±15° elevation, a quarter turn apart) of the decoded scene, and K."""
    from splatpack.codecs.compact import dequantize, read_compact
    from splatpack.render.camera import orbit_cameras

    means = dequantize(read_compact(scene_path)).means
    poses, K = orbit_cameras(means, 4, SIZE, FOV)
    return [poses[0], poses[1]], K


def reference(scene_path: Path, c2w: np.ndarray, K: np.ndarray, colours_from: np.ndarray | None = None) -> torch.Tensor:
    """splatpack's CPU render of the decoded compact scene from ``c2w`` (``render_compact``: the
    field's colours for this camera); with ``colours_from``, the colours of that other camera
    instead (what a viewer that did not recolour would show)."""
    from splatpack.codecs.compact import dequantize, field_colors, read_compact, render_compact
    from splatpack.render import rasterize

    decoded = dequantize(read_compact(scene_path))
    viewmat = torch.from_numpy(np.linalg.inv(c2w)).float()
    Kt = torch.from_numpy(K).float()
    with torch.no_grad():
        if colours_from is None:
            img, _, _ = render_compact(decoded, viewmat, Kt, SIZE, SIZE, background=torch.zeros(3), backend="cpu")
        else:
            other = torch.from_numpy(np.linalg.inv(colours_from)).float()
            colours = field_colors(decoded.field, decoded.means, other)
            img, _, _ = rasterize(
                decoded.means,
                decoded.quats,
                decoded.scales,
                decoded.opacities,
                colours,
                viewmat,
                Kt,
                SIZE,
                SIZE,
                sh_degree=0,
                background=torch.zeros(3),
                backend="cpu",
            )
    return img.clamp(0, 1).float()


def test_compact_scene_loads(viewer):
    stats = viewer.started
    assert stats["error"] is None, stats["error"]
    assert stats["format"] == "spk" and stats["kind"] == "compact"
    assert stats["numGaussians"] == N and stats["shDegree"] == 0


# Decodes SPK twice, without and with onPartial, and reports how they compare (JSON on stdout).
PARTIAL_JS = """
import { readFile } from 'node:fs/promises';
const { decodeSpk } = await import(process.env.SPK_DECODER);
const bytes = await readFile(process.env.SPK);
const plain = await decodeSpk(bytes);
const events = [];
let partial = null;
const scene = await decodeSpk(bytes, {
  onProgress: (p) => events.push(p.section),
  onPartial: async (g) => {
    events.push('PARTIAL');
    partial = g;
    await new Promise((r) => setTimeout(r, 1));
  },
});
const same = (a, b) =>
  a === b || (a != null && b != null && a.length === b.length && a.every((v, i) => Object.is(v, b[i])));
const arrays = ['means', 'scales', 'quats', 'opacities', 'sh0', 'shRest'];
const camera = [0.5, -2, 3];
console.log(JSON.stringify({
  events,
  kind: partial.kind,
  numGaussians: partial.numGaussians,
  geometryIsFinal: ['means', 'scales', 'quats', 'opacities'].every((k) => same(partial[k], scene[k])),
  partialSh0: partial.sh0 === null ? null : same(partial.sh0, plain.sh0),
  sameWithoutCallback: arrays.every((k) => same(plain[k], scene[k])) && plain.shDegree === scene.shDegree,
  sameColours: plain.colourField ? same(plain.colourField.colours(camera), scene.colourField.colours(camera)) : null,
}));
"""


@pytest.mark.parametrize("key", ["compact", "grid"])
def test_decoder_reports_geometry_before_colours(scenes, key):
    node = shutil.which("node")
    if node is None or not (ROOT / "viewer" / "node_modules").is_dir():
        pytest.skip("node or viewer/node_modules is absent (run: cd viewer && npm ci)")
    env = {**os.environ, "SPK": str(scenes[key]), "SPK_DECODER": SPK_DECODER.as_uri()}
    p = subprocess.run(
        [node, "--input-type=module", "-e", PARTIAL_JS], capture_output=True, text=True, timeout=120, env=env
    )
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    events = r["events"]
    assert events.count("PARTIAL") == 1 and events[-1] is None
    before, after = events[: events.index("PARTIAL")], events[events.index("PARTIAL") + 1 : -1]
    colour = ("colour.",) if key == "compact" else ("grid.shN",)
    assert after and all(e.startswith(colour) for e in after), events  # only colour sections are left
    assert not any(e.startswith(colour) for e in before), events
    assert r["kind"] == key and r["numGaussians"] == (N if key == "compact" else N_GRID)
    assert r["geometryIsFinal"] and r["sameWithoutCallback"]
    assert r["partialSh0"] is (None if key == "compact" else True)
    assert r["sameColours"] is (True if key == "compact" else None)


def check_phases(viewer, n: int) -> dict:
    """The load just finished drew the partial scene, then the final one, both of n Gaussians
    (waits for the final scene's first frame: the load resolves before it is drawn)."""
    viewer.page.wait_for_function("() => window.splatpack.stats().phases.some((p) => p.phase === 'final')")
    stats = viewer.stats()
    assert [p["phase"] for p in stats["phases"]] == ["partial", "final"], stats["phases"]
    assert all(p["numGaussians"] == n for p in stats["phases"]), stats["phases"]
    t = stats["timings"]  # the partial scene was drawn before the decoding finished
    assert 0 < t["partialMs"] <= t["downloadMs"] + t["decodeMs"] + t["partialShowMs"]
    return stats


def test_partial_scene_drawn_before_final(viewer):
    """The geometry is drawn before the colour field is decoded, then the complete scene."""
    check_phases(viewer, N)


def test_grid_scene_partial_then_final(viewer, scenes):
    """A grid scene: geometry and DC colours first, then the scene with its SH band."""
    # an interactive (not scripted) view, so the app draws by itself while loading
    viewer.page.evaluate("() => window.splatpack.viewer.releaseScripted()")
    stats = viewer.load(f"/files/{scenes['grid'].name}")
    assert stats["error"] is None, stats["error"]
    assert stats["kind"] == "grid" and stats["numGaussians"] == N_GRID and stats["shDegree"] == 1
    check_phases(viewer, N_GRID)
    viewer.load(f"/files/{scenes['compact'].name}")  # back to the compact scene


def test_colour_field_views_match_cpu_render(viewer, scene, record_property):
    """Two cameras, each recoloured for itself on renderOnce; then the first again."""
    from splatpack.metrics import psnr

    poses, K = cameras(scene)
    refs = [reference(scene, c2w, K) for c2w in poses]
    # each view with the other view's colours: what a viewer showing stale colours would draw
    stale = [reference(scene, poses[v], K, colours_from=poses[1 - v]) for v in (0, 1)]
    shots = []
    for v in (0, 1, 0):
        shot = torch.from_numpy(viewer.render(poses[v], K, SIZE, SIZE))
        value, wrong = psnr(shot, refs[v]), psnr(shot, stale[v])
        shots.append(shot)
        record_property(f"psnr_compact_view{v}_{len(shots)}", round(value, 2))
        print(
            f"viewer PSNR compact field view {v}: {value:.2f} dB; against the other view's colours "
            f"{wrong:.2f} dB (browser mean {shot.mean():.3f}, reference {refs[v].mean():.3f})"
        )
        assert value >= MIN_PSNR, "\n".join(viewer.console[-20:])
        assert value >= wrong + 3.0, "the viewer's colours are not those of this camera"
    # back at camera 0 after camera 1: the same picture as the first time
    assert psnr(shots[2], shots[0]) >= 40.0


def test_no_errors_in_console(viewer):
    errors = [m for m in viewer.console if m.startswith(("error", "pageerror"))]
    assert not errors, "\n".join(errors)
