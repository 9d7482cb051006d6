"""Rate-distortion benchmark of splat compressors (splatpack, SPZ, SOG via sogpy and
splat-transform, gsplat's PNG codec) on trained splats: bytes, PSNR/SSIM against renders of the
original from orbit views, encode/decode time. Writes OUT/results.json and OUT/rd.png."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatpack.apps.bench import BenchConfig, run_bench
from splatpack.apps.parser import float_in, int_in


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("outputs/bench/rd"), metavar="DIR", help="output folder.")
    p.add_argument(
        "--inputs",
        type=Path,
        nargs="*",
        metavar="FILE",
        help="splat files (default: ../shared/splats/plant.splat and biker.spz).",
    )
    p.add_argument(
        "--tools",
        nargs="*",
        metavar="TOOL",
        help="subset of splatpack, splatpack-adaptive, splatpack-adaptive-refine, splatpack-alloc, splatpack-alloc-refine, splatpack-refine, spz, sogpy, splat-transform, sog-export (splatpack's SOG writer in splat-transform's layout), gsplat-png.",
    )
    p.add_argument(
        "--qualities",
        type=int_in(0, 10),
        nargs="*",
        metavar="Q",
        help="--quality levels of splatpack, splatpack-adaptive, splatpack-refine and splatpack-adaptive-refine.",
    )
    p.add_argument(
        "--alloc-psnrs",
        type=float_in(0),
        nargs="*",
        metavar="DB",
        help="splatpack-alloc and splatpack-alloc-refine target PSNRs (compress --target-psnr DB --allocate).",
    )
    p.add_argument("--views", type=int_in(1), default=32, metavar="N", help="orbit views per input.")
    p.add_argument("--size", type=int_in(1), default=384, metavar="N", help="render size (square, pixels).")
    p.add_argument(
        "--subset",
        type=int_in(0),
        default=0,
        metavar="N",
        help="bench a seeded random subset of N Gaussians of each input (0: all).",
    )
    p.add_argument(
        "--tool-timeout",
        type=float_in(0),
        default=0.0,
        metavar="SECONDS",
        help="report splat-transform as timed out after SECONDS per input (0: no limit).",
    )
    p.add_argument(
        "--sog-iterations",
        type=int_in(1),
        default=10,
        metavar="N",
        help="SH-palette k-means iterations of splat-transform (its -i) and sog-export (default 10, splat-transform's).",
    )


def run(args: argparse.Namespace) -> None:
    cfg = BenchConfig(
        views=args.views,
        size=args.size,
        tool_timeout=args.tool_timeout,
        max_gaussians=args.subset,
        sog_iterations=args.sog_iterations,
    )
    if args.inputs:
        cfg.inputs = list(args.inputs)
    if args.tools:
        cfg.tools = tuple(args.tools)
    if args.qualities:  # the levels of every tool on the quality ladder
        cfg.qualities = cfg.refine_qualities = cfg.adaptive_qualities = tuple(args.qualities)
    if args.alloc_psnrs:  # the targets of both allocation tools
        cfg.alloc_psnrs = cfg.alloc_refine_psnrs = tuple(args.alloc_psnrs)
    run_bench(cfg, args.out)
    print(args.out / "results.json")
