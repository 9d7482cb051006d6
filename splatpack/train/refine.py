"""``compress --refine SECONDS``: self-distillation of a compressed scene, with no capture images.

The targets are renders of the *original* Gaussians from orbit views (rings at −30°, 0° and
+30° elevation, offset from the ±15° ring the bench and ``--target-psnr`` measure on, so the
refinement is not scored on the views it saw), held in memory as float images (8-bit files
would cap the target at about 59 dB). The model renders its attributes as the grid codec will
decode them — straight-through fake quantisation with the chosen level's bits
(:func:`splatpack.codecs.grid.quantisation_aware`; Jacob et al., "Quantization and Training of
Neural Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018) — and the usual
3DGS loss (L1 + D-SSIM) moves the float parameters to where their *quantised* values best
reproduce the original: knowledge distillation from the uncompressed scene (Hinton, Vinyals &
Dean 2015; LightGaussian, Fan et al. 2023, distils its SH this way). No densification, no
opacity reset, no sort during training (the codec sorts the result once). An SH rest coded as a
shared basis is trained inside that basis, its coefficients rendered on the file's lattice, and
one coded as a palette trains its centroids on fixed labels (:mod:`splatpack.train.grid`); both
keep the SH rest's full 3DGS learning rate.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from splatpack.captures.types import Capture, Frame
from splatpack.codecs.grid import ATTRIBUTES, GridCodecConfig
from splatpack.codecs.grid.encode import best_frames, scene_grid
from splatpack.codecs.grid.layout import GridCells
from splatpack.codecs.grid.values import resolved_positions
from splatpack.core import GaussianSet
from splatpack.core.frames import canonical_gaussians
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras
from splatpack.train.config import LearningRates, TrainConfig
from splatpack.train.scenes import apply_overrides
from splatpack.train.trainer import Trainer

__all__ = ["SIZE_GROWTH", "orbit_capture", "refine_and_compress"]

ELEVATIONS = (30.0, 0.0, -30.0)
STEPS_PER_SECOND = 20  # nominal steps for the learning-rate schedules; the time budget ends the run
#: the 3DGS learning rates times this: Adam moves every parameter by about its rate per step, and
#: the full rates move them by several quantisation steps
LR_SCALE = 0.01
#: except the SH rest's, rendered as coded (a basis, planes or a palette), which keeps its full
#: 3DGS rate (already 20× below the DC's): at 1 % it barely moves in a short run and 10× the
#: full rate overshoots (``benchmarks/results/refine_sh_rest.md``)
SH_REST_LR_SCALE = 1.0
#: refined files are larger than the file they start from by about 1 % (values moved off the
#: sort's neighbourhoods): ``--allocate --refine --target-size`` allocates this much below the size
SIZE_GROWTH = 0.02


def orbit_capture(gs: GaussianSet, views: int = 48, size: int = 256, test: int = 6, fov_degrees: float = 60.0):
    """A capture of ``gs`` itself: ``views`` training and ``test`` held-out orbit renders (on black)."""
    frames = []
    for n, phase in ((views, math.pi / views), (test, math.pi / max(test, 1) / 2)):
        poses, K = orbit_cameras(gs.means, n, size, fov_degrees, ELEVATIONS, phase)
        images = render_views(gs, poses, K, size)
        frames.append(
            [
                Frame(Path(f"orbit_{i:03d}.png"), c2w, K, size, size, image=img.numpy().astype(np.float32))
                for i, (c2w, img) in enumerate(zip(poses, images))
            ]
        )
    return Capture("orbit", "orbit", Path("."), frames[0], frames[1])


def refine_and_compress(
    gs: GaussianSet,
    out: str | Path,
    seconds: float,
    quality: int | str,
    backend: str = "auto",
    console: Console | None = None,
    original: GaussianSet | None = None,
    steps: int | None = None,
    codec: GridCodecConfig | None = None,
    smoothness: float = 0.0,
) -> dict[str, Any]:
    """Fine-tune ``gs`` for ``seconds`` of training steps against orbit renders of ``original``
    (default ``gs``; the unpruned scene when ``gs`` was pruned), rendering through quality
    ``quality``'s quantisation, then write its grid scene to ``out`` (atomically). Returns the
    run's metrics (``size_bytes``, test ``psnr`` of the decoded scene, ``steps``). ``steps``:
    a fixed number of steps instead of the time budget (reproducible runs). ``codec``: the grid
    codec's settings in full (an allocation's, say) instead of the level's. ``smoothness``: the
    grid smoothness loss's weight (SOG, :mod:`splatpack.compress.grid_smoothness`; the scene is
    then sorted once before the first step and coded on that grid), 0 = none."""
    capture = orbit_capture(gs if original is None else original)
    # positions decided on the input (a quantised file's lattice: the refined ones move along it)
    level = resolved_positions(gs, codec or GridCodecConfig.from_quality(quality))
    frames = level.frames
    if frames == "best":  # training quantises in one frame choice: the one "best" would keep
        cells = GridCells.of(scene_grid(gs, level)[0])
        frames = best_frames(canonical_gaussians(gs, order_scales=False), canonical_gaussians(gs), cells, level)
    budget = None if steps else seconds
    steps = steps or max(1, int(seconds * STEPS_PER_SECOND))
    settings = {
        "steps": steps,
        "backend": backend,
        "sh_degree": gs.sh_degree,
        "scale_schedule": False,
        "lr_decay": "progress",  # the time budget, not the nominal steps, ends the schedule
        "densify": {"refine_stop": 0},
        "compact": {"enabled": False},
        "eval_lpips": False,
        "lr": {
            k: v * (SH_REST_LR_SCALE if k == "shN" and level.sh_mode in ("basis", "grid", "palette") else LR_SCALE)
            for k, v in dataclasses.asdict(LearningRates()).items()
        },
        "grid": {
            "enabled": True,
            "start": 0,
            "resort_every": 0,
            "smoothness_weight": smoothness,
            "quantisation_aware": True,
            "quality": quality,
            # the frames training quantises in; an allocation's settings in full
            "codec": {**_overrides(level), "frames": frames},
        },
    }
    cfg = apply_overrides(TrainConfig(), settings, "compress --refine")
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix=".refine-", dir=out.resolve().parent) as tmp:
        trainer = Trainer(capture, cfg, tmp, console=console or Console(stderr=True), initial=gs)
        metrics = trainer.train(max_seconds=budget)
        os.replace(Path(tmp) / "scene.spk", out)
    metrics["steps"] = trainer.step
    return metrics


def _overrides(cfg: GridCodecConfig) -> dict[str, Any]:
    """``cfg`` as the grid-training ``codec`` mapping (every field, attribute codings as dicts)."""
    return {
        f.name: getattr(cfg, f.name) if f.name not in ATTRIBUTES else dataclasses.asdict(getattr(cfg, f.name))
        for f in dataclasses.fields(cfg)
    }
