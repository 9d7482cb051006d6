"""The ``splatpack`` command line (tyro subcommands).

Errors in the user's input are printed as one line, ``error: …``, with exit status 2;
``--debug`` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import tyro

from splatpack.core.errors import SplatpackError

Positional = tyro.conf.Positional


def scene_config(path: str, config: Optional[str | Path], cli: dict, extra: Optional[dict] = None):
    """(scene spec, TrainConfig, Capture) for a scene: its base preset, then the method preset
    (``config``), then the scene file's overrides, then ``extra`` and the command-line values."""
    from splatpack.captures import load_capture
    from splatpack.train.scenes import resolve_scene
    from splatpack.train import TrainConfig, apply_overrides, load_config
    from splatpack.train.config import resolve_preset

    spec = resolve_scene(path)
    cfg = TrainConfig()
    if spec.config:
        cfg = load_config(spec.config, cfg)
    if config:  # a method preset over the scene's base preset; the scene's own settings win
        cfg = load_config(resolve_preset(config), cfg)
    cfg = apply_overrides(cfg, spec.overrides, str(path))
    if extra:
        cfg = apply_overrides(cfg, extra, "command line")
    cli = dict(cli)
    if cli.get("downscale") is None:
        cli["downscale"] = spec.downscale or None
    cfg = apply_overrides(cfg, {k: v for k, v in cli.items() if v is not None}, "command line")
    capture = load_capture(spec.data, spec.format, downscale=cfg.downscale, test_every=cfg.test_every)
    capture.name = spec.name
    return spec, cfg, capture


def train(
    path: Positional[str],
    config: Optional[str] = None,
    compact: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False,
    downscale: Optional[int] = None,
    steps: Optional[int] = None,
    out: Optional[Path] = None,
    backend: Literal["auto", "cpu", "cuda"] = "auto",
    resume: bool = False,
    threads: int = 0,
    viewer: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False,
    viewer_port: int = 8080,
    viewer_every: int = 100,
) -> None:
    """Train 3D Gaussian Splatting on a capture.

    Args:
        path: a capture folder (Blender, nerfstudio, LLFF, COLMAP), a scene file (scenes/*.yaml) or 'default'.
        config: a method preset applied over the scene's base preset (the scene's overrides still win): a YAML file, or the name of a shipped one (default, compact, sog, full).
        compact: train the default compact preset, configs/full.yaml (masking + R-VQ + sorted grids → scene.spk); the same as --config full.
        downscale: image downscale factor (uses images_N folders when present).
        steps: training iterations.
        out: output folder (default: outputs/<scene>).
        backend: rasterizer: cuda (gsplat) when available, else the compiled CPU kernels.
        resume: continue from out/checkpoint.pt.
        threads: CPU threads (0 = all cores).
        viewer: watch the Gaussians train in the browser (viser, on 127.0.0.1).
        viewer_port: the live view's port (the next free one when taken; 0 = any free port).
        viewer_every: steps between live view updates.
    """
    from rich.console import Console

    from splatpack.train import Trainer
    from splatpack.train.trainer import StepCallback

    console = Console(stderr=True)
    if compact and config:
        raise SplatpackError("give --compact (the full preset) or --config, not both")
    cli = {"steps": steps, "backend": backend, "threads": threads or None, "downscale": downscale}
    spec, cfg, capture = scene_config(path, "full" if compact else config, cli)
    out_dir = out or Path("outputs") / spec.name
    f0 = capture.train[0]
    console.print(
        f"[bold]{spec.name}[/]: {capture.format}, {len(capture.train)} train / {len(capture.test)} test views at "
        f"{f0.width}×{f0.height}, {0 if capture.points is None else len(capture.points):,} SfM points → {out_dir}"
    )
    live, callbacks = None, []
    if viewer:
        from splatpack.view.live import LiveTrainingView, LiveViewConfig

        live = LiveTrainingView(capture.train, LiveViewConfig(port=viewer_port))
        callbacks.append(StepCallback(lambda step, params: live.update(params, step), every=max(1, viewer_every)))
        console.print(f"live view: {live.url}")
    try:
        metrics = Trainer(capture, cfg, out_dir, console=console, callbacks=callbacks).train(resume=resume)
        report_training(console, metrics, out_dir)
        if live is not None and sys.stdin.isatty():
            live.flush()
            console.print(f"the live view stays at {live.url} (Ctrl-C to quit)")
            wait_for_ctrl_c()
    finally:
        if live is not None:
            live.close()


def report_training(console, metrics: dict, out_dir: Path) -> None:
    lp = "n/a" if metrics["lpips"] is None else f"{metrics['lpips']:.4f}"
    size = f", scene.spk {metrics['size_bytes']:,} bytes" if "size_bytes" in metrics else ""
    console.print(
        f"done: test PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f}, LPIPS {lp}, "
        f"{metrics['num_gaussians']:,} Gaussians{size}, {metrics['train_seconds']:.0f} s ({metrics['backend']})"
    )
    print(out_dir / "metrics.json", flush=True)


def wait_for_ctrl_c() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM. Both handlers are installed here: a process a
    non-interactive shell starts in the background inherits SIGINT *ignored*, and Python then
    never raises KeyboardInterrupt."""
    import signal

    old = {sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def process(
    images_dir: Positional[Path],
    out: Path,
    matching: Literal["exhaustive", "sequential"] = "exhaustive",
) -> None:
    """Structure-from-motion with pycolmap on the CPU: photos → COLMAP model in OUT/sparse/0.

    Args:
        images_dir: folder of photos.
        out: output folder; `splatpack train OUT` reads it.
        matching: exhaustive (small sets) or sequential (video frames).
    """
    from splatpack.captures.sfm import run_sfm

    stats = run_sfm(images_dir, out, matching=matching)
    print(", ".join(f"{k}: {v}" for k, v in stats.items()))


def render(
    run_dir: Positional[Path],
    out: Optional[Path] = None,
    orbit: bool = False,
    frames: int = 120,
    fps: int = 30,
    backend: Literal["auto", "cpu", "cuda"] = "auto",
) -> None:
    """Render a trained scene: its test views, or an orbit video.

    Args:
        run_dir: a training output folder (point_cloud.ply or scene.spk, + scene.json) or a scene
            file (.ply, .splat, .spz, .sog, .spk).
        out: output folder (default: RUN_DIR/renders).
        orbit: render an orbit video (mp4) around the scene instead of the test views.
        frames: orbit frames.
        fps: orbit video frame rate.
        backend: rasterizer backend.
    """
    from splatpack.apps.render import render_run

    for p in render_run(run_dir, out, orbit=orbit, frames=frames, fps=fps, backend=backend):
        print(p)


def info(file: Positional[Path], json: bool = False) -> None:
    """Show a .spk file's sections, their sizes and the ratio to the equivalent PLY.

    Args:
        file: a .spk file.
        json: print a JSON object (num_gaussians, total_bytes, ply_equivalent_bytes, sections, …).
    """
    import json as _json

    from splatpack.apps.inspect import format_info, spk_info

    d = spk_info(file)
    print(_json.dumps(d, indent=2) if json else format_info(d))


def decompress(file: Positional[Path], out: Annotated[Path, tyro.conf.arg(aliases=["-o"])]) -> None:
    """Decode a compact .spk into a standard INRIA PLY (colour field baked into degree-3 SH).

    Args:
        file: a .spk file written by `splatpack train --config configs/compact.yaml`.
        out: the PLY to write.
    """
    from splatpack.apps.inspect import decompress as run

    report_export(run(file, out))


def export(
    file: Positional[Path],
    out: Annotated[Path, tyro.conf.arg(aliases=["-o"])],
    format: Literal["ply", "splat", "spz", "sog"] | None = None,
) -> None:
    """Write a scene (.spk, or any splat file: PLY, compressed PLY, .splat, SPZ, SOG) in a format
    other tools read.

    Args:
        file: the scene to export.
        out: the file to write (a .sog zip, or a folder for SOG without the extension).
        format: ply | splat | spz | sog (default: from the extension of OUT).
    """
    from splatpack.apps.inspect import export as run

    report_export(run(file, out, format))


def report_export(r: dict) -> None:
    msg = f"wrote {r.get('out', r.get('ply'))}: {r['num_gaussians']:,} Gaussians, {r['bytes']:,} bytes"
    if "baked_vs_field_psnr" in r:
        msg += f"; baked SH vs colour field: {r['baked_vs_field_psnr']:.2f} dB PSNR over {r['views']} views"
    print(msg)


def compress(
    file: Positional[Path],
    out: Annotated[Path, tyro.conf.arg(aliases=["-o"])],
    quality: Union[int, Literal["sog", "smallest", "small", "palette", "default", "high", "max"]] = 6,
    finetune: Optional[str] = None,
    finetune_steps: int = 1000,
    backend: Literal["auto", "cpu", "cuda"] = "auto",
) -> None:
    """Compress trained splats: sort them into a self-organising grid (PLAS) and code every
    attribute plane as an image, into a .spk scene; with --finetune, first a short fine-tune
    against the capture's images with the grid smoothness loss (no densification).

    Args:
        file: INRIA .ply (SH 0-3), PlayCanvas .compressed.ply, .splat, .spz (v1-4), SOG (.sog or folder), or a .spk.
        out: the .spk to write.
        quality: 0 (smallest) … 10 (near lossless), default 6; "sog" is Self-Organizing Gaussians' own quantisation (see splatpack.codecs.grid).
        finetune: a capture folder or scene file (as for `splatpack train`) the splats were trained on.
        finetune_steps: fine-tuning iterations.
        backend: rasterizer for the fine-tune.
    """
    from splatpack.codecs.grid import GridCodecConfig, write_grid_scene
    from splatpack.formats import load_scene

    t0 = time.perf_counter()
    cfg = GridCodecConfig.from_quality(quality)
    gs = load_scene(file)
    if finetune:
        size = finetune_and_compress(file, gs, out, finetune, finetune_steps, quality, backend)
    else:
        size = write_grid_scene(out, gs, cfg)
    from splatpack.formats import path_size
    from splatpack.apps.inspect import relative_size

    src = path_size(file)
    print(f"wrote {out}: {len(gs):,} Gaussians, {size:,} bytes ({relative_size(size, src)} than {Path(file).name}), "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip


def finetune_and_compress(file: Path, gs, out: Path, scene: str, steps: int, quality: int | str, backend: str) -> int:
    """Fine-tune ``gs`` on ``scene``'s images (SOG grid training from step 0, no densification),
    then write its grid scene to ``out``; returns the bytes written."""
    import os
    import tempfile

    from rich.console import Console

    from splatpack.train import Trainer

    extra = {
        "init_from": str(Path(file).resolve()), "sh_degree": gs.sh_degree, "scale_schedule": False,
        "densify": {"refine_stop": 0}, "compact": {"enabled": False},
        "grid": {"enabled": True, "start": 0, "resort_every": 0, "quality": quality},
    }  # fmt: skip
    _, cfg, capture = scene_config(scene, None, {"steps": steps, "backend": backend}, extra)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix=".finetune-", dir=out.resolve().parent) as tmp:
        metrics = Trainer(capture, cfg, tmp, console=Console(stderr=True)).train()
        os.replace(Path(tmp) / "scene.spk", out)
    print(f"fine-tuned {steps} steps on {scene}: test PSNR {metrics['psnr']:.2f} dB (before coding "
          f"{metrics['psnr_before_postprocess']:.2f} dB)")  # fmt: skip
    return int(metrics["size_bytes"])


def bench(
    out: Path = Path("outputs/bench/rd"),
    inputs: Optional[list[Path]] = None,
    tools: Optional[list[str]] = None,
    qualities: Optional[list[int]] = None,
    views: int = 32,
    size: int = 384,
) -> None:
    """Rate-distortion benchmark of splat compressors (splatpack, SPZ, SOG via sogpy and
    splat-transform, gsplat's PNG codec) on trained splats: bytes, PSNR/SSIM against renders of the
    original from orbit views, encode/decode time. Writes OUT/results.json and OUT/rd.png.

    Args:
        out: output folder.
        inputs: splat files (default: ../shared/splats/plant.splat and biker.spz).
        tools: subset of splatpack, spz, sogpy, splat-transform, gsplat-png.
        qualities: splatpack --quality levels.
        views: orbit views per input.
        size: render size (square, pixels).
    """
    from splatpack.apps.bench import BenchConfig, run_bench

    cfg = BenchConfig(views=views, size=size)
    if inputs:
        cfg.inputs = list(inputs)
    if tools:
        cfg.tools = tuple(tools)
    if qualities:
        cfg.qualities = tuple(qualities)
    run_bench(cfg, out)
    print(out / "results.json")


def view(
    file: Positional[Path],
    port: int = 0,
    no_browser: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False,
    desktop: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False,
    width: int = 1024,
    height: int = 768,
) -> None:
    """Look at a scene: serve the web viewer and FILE on 127.0.0.1 and open the browser (Ctrl-C
    stops), or with --desktop open a native window.

    Args:
        file: a .spk scene or a splat file (PLY, compressed PLY, .splat, .spz, .sog).
        port: the port to listen on (0 = a free one).
        no_browser: print the address without opening a browser.
        desktop: a native window instead of the browser.
        width: desktop window width (pixels).
        height: desktop window height (pixels).
    """
    from splatpack.view.server import BUILD_HINT, ViewServer, viewable_format

    viewable_format(file)
    if desktop:
        try:
            from splatpack.view.desktop import run_desktop_viewer

            run_desktop_viewer(file, width=width, height=height)
        except ModuleNotFoundError as e:
            raise SplatpackError(f"the desktop viewer cannot start: the module {e.name!r} is not installed") from None
        return
    with ViewServer([file], port=port) as server:
        if not server.has_app:
            print(f"warning: the web viewer is not built ({server.static_dir} has no index.html): run `{BUILD_HINT}`",
                  file=sys.stderr)  # fmt: skip
        print(f"serving {Path(file).name} at {server.url} (Ctrl-C to stop)", flush=True)
        try:
            if not no_browser:
                import webbrowser

                if not webbrowser.open(server.url):
                    print(f"could not start a browser: open {server.url}", file=sys.stderr)
        except KeyboardInterrupt:
            return
        wait_for_ctrl_c()


COMMANDS = {
    "train": train, "process": process, "render": render, "info": info, "decompress": decompress, "export": export,
    "compress": compress, "bench": bench, "view": view,
}  # fmt: skip


def _dry(fn):
    """``fn``'s signature and docs for tyro, without running it (parsing only)."""

    @functools.wraps(fn)
    def parse_only(*args, **kwargs) -> None:
        return None

    return parse_only


def parse_error(argv: list[str]) -> str | None:
    """tyro's message for arguments it cannot parse, as one line (None when they parse): its
    boxed, multi-line report would break the one-line error rule of every other bad input."""
    import contextlib
    import io
    import re

    if not argv or any(a in ("-h", "--help") for a in argv):
        return None
    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(io.StringIO()):
            tyro.extras.subcommand_cli_from_dict({k: _dry(f) for k, f in COMMANDS.items()}, prog="splatpack", args=argv)
    except SystemExit as e:
        if not e.code:
            return None
        parts: list[list[str]] = [[]]
        for line in buf.getvalue().splitlines()[1:]:  # after the title: sections between rules
            text = line.strip().strip("│").strip()
            if set(text) <= set("─-╰╯ "):  # a rule (a box's or, without a terminal, dashes)
                parts.append([])
            else:
                parts[-1].append(text)
        sections = [" ".join(p) for p in parts if p]
        keep = [sections[0]] + [t for t in sections[1:] if t.startswith("Available subcommands")] if sections else []
        msg = re.sub(r"\s+", " ", "; ".join(keep)).split(" Got errors:")[0].strip()
        return msg or "cannot parse the arguments (see splatpack --help)"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not debug and (msg := parse_error(argv)) is not None:
        print(f"error: {msg}", file=sys.stderr)
        return 2
    try:
        tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="splatpack", args=argv, description=__doc__.splitlines()[0])
    except SplatpackError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def entrypoint() -> None:
    sys.exit(main())


