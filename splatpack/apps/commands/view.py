"""Look at a scene: serve the web viewer and FILE (or a training run's result) on 127.0.0.1 and
open the browser (Ctrl-C stops), or with --desktop open a native window; both start from the
run's training cameras when known, else from a robust framing of the Gaussians."""

from __future__ import annotations

import argparse
import sys
import tempfile
import webbrowser
from pathlib import Path

from splatpack.apps.parser import add_max_gaussians, int_in
from splatpack.apps.terminal import wait_for_ctrl_c
from splatpack.codecs.grid import GridCodecConfig, write_grid_scene
from splatpack.codecs.latent import FORMAT_KIND as LATENT_KIND
from splatpack.codecs.prior.codec import FORMAT_KIND as PRIOR_KIND
from splatpack.codecs.prior.codec import transcode_to_grid
from splatpack.codecs.registry import read_gaussians
from splatpack.core import SplatpackError
from splatpack.spk import SpkReader
from splatpack.view.server import BUILD_HINT, ViewServer
from splatpack.view.target import resolve_target, scene_points, view_framing


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        metavar="FILE",
        type=Path,
        help="a .spk scene, a splat file (PLY, compressed PLY, .splat, .spz, .sog) or a `splatpack train` "
        "output folder (its scene.spk or point_cloud.ply, framed from its training cameras).",
    )
    p.add_argument(
        "--port", type=int_in(0, 65535), default=0, metavar="N", help="the port to listen on (0 = a free one)."
    )
    p.add_argument("--no-browser", action="store_true", help="print the address without opening a browser.")
    p.add_argument("--desktop", action="store_true", help="a native window instead of the browser.")
    p.add_argument("--width", type=int_in(1), default=1024, metavar="N", help="desktop window width (pixels).")
    p.add_argument("--height", type=int_in(1), default=768, metavar="N", help="desktop window height (pixels).")

    add_max_gaussians(p)


def run(args: argparse.Namespace) -> None:
    target = resolve_target(args.file)
    points = scene_points(target.file)  # reads (and so checks) the whole file before serving it
    framing, notes = view_framing(target, points)
    for note in notes:
        print(f"warning: {note}; the view is framed from the {framing.source}", file=sys.stderr)
    if args.desktop:
        try:  # the desktop viewer's package holds the optional dependencies (moderngl, glfw)
            from splatpack.view.desktop import run_desktop_viewer

            run_desktop_viewer(target.file, width=args.width, height=args.height, framing=framing)
        except ModuleNotFoundError as e:
            raise SplatpackError(f"the desktop viewer cannot start: the module {e.name!r} is not installed") from None
        return
    name = target.file.name
    with tempfile.TemporaryDirectory(prefix="splatpack-view-") as tmp:
        served = browser_readable(target.file, Path(tmp))
        with ViewServer([served], port=args.port, framings={name: framing}) as server:
            serve_until_ctrl_c(server, target.file, args.no_browser)


def browser_readable(path: Path, tmp: Path) -> Path:
    """``path``, or for a scene the browser cannot decode, the same scene as a grid scene in
    ``tmp``: a ``.spk`` coded under a bit model (``kind: prior-grid``) transcoded losslessly, one
    coded as a generative model's latents (``kind: latent-grid``) decoded and written at the grid
    codec's highest quality."""
    if path.suffix.lower() != ".spk":
        return path
    with SpkReader(path) as reader:
        kind = reader.meta.get("kind")
    if kind == PRIOR_KIND:
        transcode_to_grid(path, tmp / path.name)
    elif kind == LATENT_KIND:
        write_grid_scene(tmp / path.name, read_gaussians(path), GridCodecConfig.from_quality("max"))
    else:
        return path
    return tmp / path.name


def serve_until_ctrl_c(server: ViewServer, file: Path, no_browser: bool) -> None:
    if not server.has_app:
        print(
            f"warning: the web viewer is not built ({server.static_dir} has no index.html): run `{BUILD_HINT}`",
            file=sys.stderr,
        )
    print(f"serving {file} at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        if not no_browser and not webbrowser.open(server.url):
            print(f"could not start a browser: open {server.url}", file=sys.stderr)
    except KeyboardInterrupt:
        return
    wait_for_ctrl_c()
