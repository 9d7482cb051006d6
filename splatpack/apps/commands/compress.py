"""Compress trained splats: sort them into a self-organising grid (PLAS) and code every attribute
plane as an image, into a .spk scene; with --finetune, first a short fine-tune against the
capture's images with the grid smoothness loss (no densification); with --target-size or
--target-psnr, the quality level that meets the target (bisection of the ladder)."""

from __future__ import annotations

import argparse
import dataclasses
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
    byte_size,
    float_in,
    int_in,
    quality_level,
    require_extension,
)
from splatpack.apps.target import Target, refine_allocation, write_to_target
from splatpack.codecs.grid import DROP_FRACTION, GridCodecConfig, write_grid_scene
from splatpack.codecs.latent import LATENT_SCENE_CODEC, LatentCodecConfig
from splatpack.codecs.prior.codec import PRIOR_SCENE_CODEC, PriorCodecConfig
from splatpack.codecs.prior.modelfile import DEFAULT_MODEL
from splatpack.compress.pruning import kept_indices, orbit_contributions
from splatpack.compress.sh_basis import culled_gaussians, zeroed_sh_rest
from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.validate import validate_gaussians
from splatpack.formats import load_scene, path_size
from splatpack.generative.model import SHIPPED_MODEL
from splatpack.train import Trainer
from splatpack.train.refine import SIZE_GROWTH, refine_and_compress
from splatpack.train.scenes import scene_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        metavar="FILE",
        type=Path,
        help="INRIA .ply (SH 0-3), PlayCanvas .compressed.ply, .splat, .spz (v1-4), SOG (.sog or folder), or a .spk.",
    )
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="the .spk to write.")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument(
        "--quality",
        type=quality_level,
        default="6",  # parsed as 6; a str, so argparse tells an explicit --quality 6 beside a target
        metavar="0..10|NAME",
        help="0 (smallest) … 10 (near lossless), default 6; "
        '"sog" is Self-Organizing Gaussians\' own quantisation (see splatpack.codecs.grid).',
    )
    rate.add_argument(
        "--target-size",
        type=byte_size,
        metavar="BYTES",
        help="the highest quality whose file is at most BYTES (1500000, 500k, 2MB, 2MiB).",
    )
    rate.add_argument(
        "--target-psnr",
        type=float_in(0),
        metavar="DB",
        help=f"the smallest file whose renders are at least DB dB PSNR against the original's "
        f"({Target.views} orbit views of {Target.render_size} px).",
    )
    p.add_argument(
        "--allocate",
        action="store_true",
        help="with --target-*: choose each attribute's bits (and lossy JPEG XL, the SH-rest basis and "
        "pruning) by rate-distortion measured on renders, instead of the quality ladder (slower).",
    )
    p.add_argument(
        "--refine",
        nargs="?",
        const=60.0,
        type=float_in(0),
        metavar="SECONDS",
        help="fine-tune the attributes for SECONDS (default 60) so that their quantised values "
        "reproduce renders of the original from orbit views (self-distillation: no images needed).",
    )
    p.add_argument(
        "--finetune",
        metavar="PATH",
        help="a capture folder or scene file (as for `splatpack train`) the splats were trained on.",
    )
    p.add_argument("--finetune-steps", type=int_in(1), default=1000, metavar="N", help="fine-tuning iterations.")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="rasterizer for the fine-tune.")
    p.add_argument(
        "--prior",
        nargs="?",
        const=DEFAULT_MODEL,
        metavar="MODEL",
        help=f"code quality 6's attribute grids losslessly under a learned coding model (default "
        f"{DEFAULT_MODEL}, a value model; bitplanes-v1, a bit-plane model; both shipped): the same Gaussians; "
        "the grid codec's own coding for a section where that is smaller.",
    )
    p.add_argument(
        "--latent",
        nargs="?",
        const=str(SHIPPED_MODEL),
        metavar="MODEL",
        help="code the scene as a generative model's binary latents (its autoencoder predicts the sorted "
        "grid) plus the residual at --quality's steps, lossless (default: the shipped objects10k model).",
    )
    p.add_argument(
        "--latents-only",
        action="store_true",
        help="with --latent: store the latents alone, no residual (a few KB; the model's reconstruction).",
    )

    p.add_argument(
        "--prune",
        type=float_in(0, 0.9),
        default=0.0,
        metavar="F",
        help="first remove the fraction F of Gaussians that contribute least to renders (their "
        "summed blending weight over 16 orbit views; LightGaussian's significance), e.g. 0.1.",
    )

    p.add_argument(
        "--adaptive-precision",
        nargs="?",
        const=DROP_FRACTION,
        type=float_in(0, 0.9),
        metavar="F",
        help=f"per-Gaussian precision: the fraction F (default {DROP_FRACTION:g}) of Gaussians whose renders are "
        "least sensitive to them (measured over 12 orbit views) drop the low bits of their positions "
        "and rotations; 0 is off, as without the flag.",
    )
    p.add_argument(
        "--sh-cull",
        type=float_in(0),
        metavar="TAU",
        help="zero the SH bands whose view-averaged colour energy, weighted by the Gaussian's render "
        "contribution over 16 orbit views, is below TAU (Reduced-3DGS band culling), e.g. 1e-4.",
    )
    p.add_argument(
        "--sh-zero",
        type=float_in(0, 0.99),
        metavar="F",
        help="zero the whole SH rest of the fraction F of Gaussians whose view-dependent colour, weighted "
        "by their render contribution over 16 orbit views, carries the least energy (they become "
        "view-independent); a basis-coded SH rest (levels 5-7, --sh-basis) then stores one mask bit "
        "for each and codes only the others' coefficients, e.g. 0.3. --allocate chooses F itself.",
    )
    p.add_argument(
        "--sh-basis",
        type=int_in(1, 45),
        metavar="RANK",
        help="code the SH rest as a shared PCA basis and RANK coefficient planes instead of the level's "
        "(levels 0-4 use a palette, 5-7 ranks 32-40, 8-10 all 3(K-1) coefficient planes; sh_mode basis, "
        "the level's SH-rest bits, 5 at palette levels); --refine then trains the SH rest inside that basis.",
    )

    add_max_gaussians(p)
    add_follow_symlinks(p)


def run(args: argparse.Namespace) -> None:
    require_extension(args.out, (".spk",), f"compress writes a .spk scene: name it {args.out.with_suffix('.spk')}")
    t0 = time.perf_counter()
    target = Target(size=args.target_size, psnr=args.target_psnr)
    if args.finetune and (target.size or target.psnr):
        raise SplatpackError("--finetune takes --quality, not --target-size or --target-psnr")
    if args.prior and (target.size or target.psnr or args.finetune or args.quality not in (6, "6", "default")):
        raise SplatpackError("--prior codes quality 6 grids: it takes no other --quality, --target-* or --finetune")
    if args.refine and (((target.size or target.psnr) and not args.allocate) or args.finetune or args.prior):
        raise SplatpackError(
            "--refine takes --quality or --allocate: not the ladder's --target-*, --finetune or --prior"
        )
    if args.latents_only and not args.latent:
        raise SplatpackError("--latents-only takes --latent")
    if args.latent and (target.size or target.psnr or args.finetune or args.prior or args.refine or args.sh_basis):
        raise SplatpackError("--latent takes --quality: not --target-*, --finetune, --prior, --refine or --sh-basis")
    if args.allocate and not (target.size or target.psnr):
        raise SplatpackError("--allocate searches for a target: give --target-size or --target-psnr")
    if args.sh_basis and (target.size or target.psnr or args.finetune or args.prior):
        raise SplatpackError("--sh-basis takes --quality: not --target-*, --finetune or --prior")
    if args.sh_zero and (target.size or target.psnr or args.finetune or args.prior or args.latent):
        raise SplatpackError(
            "--sh-zero takes --quality: not --target-* (--allocate chooses it), --finetune, --prior or --latent"
        )
    if args.adaptive_precision and (target.size or target.psnr or args.finetune or args.prior or args.latent):
        raise SplatpackError(
            "--adaptive-precision takes --quality or --refine: not --target-*, --finetune, --prior or --latent"
        )
    extra = {"sh_mode": "basis", "basis_rank": args.sh_basis} if args.sh_basis else {}
    if args.adaptive_precision:
        extra["drop_fraction"] = args.adaptive_precision
    cfg = GridCodecConfig.from_quality(args.quality, **extra)
    gs = original = load_scene(args.file)
    if args.prune or args.sh_cull or args.sh_zero:
        with Console(stderr=True).status(f"measuring the render contribution of {len(gs):,} Gaussians"):
            validate_gaussians(gs, args.file)
            weights = orbit_contributions(gs)
    if args.prune:
        n = len(gs)
        keep = kept_indices(weights, args.prune)
        gs, weights = gs.subset(keep), weights[keep]
        print(f"pruned {n - len(gs):,} of {n:,} Gaussians (those contributing least over 16 orbit views)")
    if args.sh_cull:
        gs, degree = culled_gaussians(gs, args.sh_cull, weights.numpy())
        print(f"SH bands culled: mean degree {degree:.2f} of {gs.sh_degree}")
    if args.sh_zero:
        gs = zeroed_sh_rest(gs, args.sh_zero, weights.numpy())
        print(f"SH rest zeroed for {int(args.sh_zero * len(gs)):,} of {len(gs):,} Gaussians (the least seen)")
    chosen, count = "", len(gs)
    if target.size or target.psnr:
        console = Console(stderr=True)
        say = lambda line: console.print(f"  {line}", highlight=False)  # progress on stderr
        if args.allocate:
            # refinement moves the bytes a little: a size is allocated with that much room
            room = dataclasses.replace(target, size=int(target.size * (1 - SIZE_GROWTH))) if target.size else target
            found = write_to_target(
                gs,
                room if args.refine else target,
                args.out,
                say,
                args.file,
                original,
                allocate=True,
                to_refine=bool(args.refine),
            )
            size, setting = found.bytes, found.describe()
            count = found.num_gaussians
            if args.refine:  # the file met the target; refinement raises its PSNR at about its size
                refined = refine_allocation(found, target, args.out, args.refine, args.backend, original)
                setting += ", " + refined.describe(args.refine)
                if refined.kept:
                    size = refined.bytes
        else:
            found = write_to_target(gs, target, args.out, say, args.file, original)  # PSNR vs the unpruned
            size, setting = found.bytes, f"quality {found.quality}"
        chosen = f", {setting}, {found.psnr:.2f} dB PSNR on {target.views} orbit views"
    elif args.refine:
        metrics = refine_and_compress(
            gs, args.out, args.refine, args.quality, args.backend, original=original, codec=cfg
        )
        size = int(metrics["size_bytes"])
        chosen = f", refined {metrics['steps']} steps in {args.refine:g} s"
    elif args.finetune:
        size = finetune_and_compress(
            args.file, gs, args.out, args.finetune, args.finetune_steps, args.quality, args.backend
        )
    elif args.latent:
        latent = LatentCodecConfig(args.latent, args.quality, residual=not args.latents_only)
        with Console(stderr=True).status(f"compressing {len(gs):,} Gaussians: grid sort, latents, residual"):
            validate_gaussians(gs, args.file)
            size = LATENT_SCENE_CODEC.encode(gs, latent).write(args.out)
        chosen = ", latents only" if args.latents_only else f", latents and the residual at quality {latent.level()}"
    elif args.prior:
        with Console(stderr=True).status(f"compressing {len(gs):,} Gaussians: grid sort, then bit-plane coding"):
            validate_gaussians(gs, args.file)
            size = PRIOR_SCENE_CODEC.encode(gs, PriorCodecConfig(args.prior)).write(args.out)
    else:
        # a spinner on a terminal (nothing in a pipe or log): sorting and coding take seconds per 100k
        with Console(stderr=True).status(f"compressing {len(gs):,} Gaussians: grid sort, then plane coding"):
            size = write_grid_scene(args.out, gs, cfg)
    src = path_size(args.file)
    print(
        f"wrote {args.out}: {count:,} Gaussians, {size:,} bytes ({relative_size(size, src)} than "
        f"{Path(args.file).name}){chosen}, {time.perf_counter() - t0:.1f} s"
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
