"""Compress trained splats: sort them into a self-organising grid (PLAS) and code every attribute
plane as an image, into a .spk scene; with --finetune, first a short fine-tune against the
capture's images with the grid smoothness loss (no densification)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console

from splatpack.apps.inspect import relative_size
from splatpack.apps.parser import (
    BACKENDS,
    add_follow_symlinks,
    add_max_gaussians,
    int_in,
    quality_level,
    require_extension,
)
from splatpack.codecs.grid import GridCodecConfig, write_grid_scene
from splatpack.core import GaussianSet
from splatpack.formats import load_scene, path_size
from splatpack.train import Trainer
from splatpack.train.scenes import scene_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        metavar="FILE",
        type=Path,
        help="INRIA .ply (SH 0-3), PlayCanvas .compressed.ply, .splat, .spz (v1-4), SOG (.sog or folder), or a .spk.",
    )
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="the .spk to write.")
    p.add_argument(
        "--quality",
        type=quality_level,
        default=6,
        metavar="0..10|NAME",
        help="0 (smallest) … 10 (near lossless), default 6; "
        '"sog" is Self-Organizing Gaussians\' own quantisation (see splatpack.codecs.grid).',
    )
    p.add_argument(
        "--finetune",
        metavar="PATH",
        help="a capture folder or scene file (as for `splatpack train`) the splats were trained on.",
    )
    p.add_argument("--finetune-steps", type=int_in(1), default=1000, metavar="N", help="fine-tuning iterations.")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="rasterizer for the fine-tune.")

    add_max_gaussians(p)
    add_follow_symlinks(p)


def run(args: argparse.Namespace) -> None:
    require_extension(args.out, (".spk",), f"compress writes a .spk scene: name it {args.out.with_suffix('.spk')}")
    t0 = time.perf_counter()
    cfg = GridCodecConfig.from_quality(args.quality)
    gs = load_scene(args.file)
    if args.finetune:
        size = finetune_and_compress(
            args.file, gs, args.out, args.finetune, args.finetune_steps, args.quality, args.backend
        )
    else:
        # a spinner on a terminal (nothing in a pipe or log): sorting and coding take seconds per 100k
        with Console(stderr=True).status(f"compressing {len(gs):,} Gaussians: grid sort, then plane coding"):
            size = write_grid_scene(args.out, gs, cfg)
    src = path_size(args.file)
    print(
        f"wrote {args.out}: {len(gs):,} Gaussians, {size:,} bytes ({relative_size(size, src)} than "
        f"{Path(args.file).name}), {time.perf_counter() - t0:.1f} s"
    )


def finetune_and_compress(
    file: Path, gs: GaussianSet, out: Path, scene: str, steps: int, quality: int | str, backend: str
) -> int:
    """Fine-tune ``gs`` (the splats read from ``file``) on ``scene``'s images (SOG grid training
    from step 0, no densification), then write its grid scene to ``out``; returns the bytes written."""
    extra = {
        "init_from": str(Path(file).resolve()),
        "sh_degree": gs.sh_degree,
        "scale_schedule": False,
        "densify": {"refine_stop": 0},
        "compact": {"enabled": False},
        "grid": {"enabled": True, "start": 0, "resort_every": 0, "quality": quality},
    }
    _, cfg, capture = scene_config(scene, None, {"steps": steps, "backend": backend}, extra)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix=".finetune-", dir=out.resolve().parent) as tmp:
        metrics = Trainer(capture, cfg, tmp, console=Console(stderr=True), initial=gs).train()
        os.replace(Path(tmp) / "scene.spk", out)
    print(
        f"fine-tuned {steps} steps on {scene}: test PSNR {metrics['psnr']:.2f} dB (before coding "
        f"{metrics['psnr_before_postprocess']:.2f} dB)"
    )
    return int(metrics["size_bytes"])
