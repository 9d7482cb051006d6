"""``compress --target-size`` / ``--target-psnr``: the level of the grid codec's quality ladder
(:data:`~splatpack.codecs.grid.QUALITY_LEVELS`) that meets a file-size or a render-quality target.

Along the ladder every level spends at least as many bits on every attribute as the one below,
so bytes B(q) and PSNR P(q) grow with q, and a bisection over the 11 levels finds

    q* = max {q : B(q) ≤ target}   (``--target-size``: the best file that fits), or
    q* = min {q : P(q) ≥ target}   (``--target-psnr``: the smallest file that is good enough)

in ⌈log₂ 12⌉ = 4 encodes. PLAS sorts once (:func:`~splatpack.codecs.grid.encode.scene_grid`:
the grid depends on the sort settings only) and every trial codes on that grid, so the file
written is byte for byte the one ``--quality q*`` writes. PSNR is the bench's
(:func:`splatpack.metrics.mean_psnr_ssim`, Morgenstern et al.'s SOG evaluation without capture
images): the decoded scene's renders against the original's, from a few small orbit views.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid import QUALITY_LEVELS, GridCodecConfig, read_grid_scene
from splatpack.codecs.grid.allocate import Allocation, AllocationConfig
from splatpack.codecs.grid.allocate import allocate as allocate_for
from splatpack.codecs.grid.encode import encode_grid_scene, scene_grid
from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.validate import validate_gaussians
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras

__all__ = ["Refined", "Target", "Trial", "refine_allocation", "search_quality", "write_to_target"]


@dataclass
class Target:
    """What ``--target-size`` / ``--target-psnr`` ask for (exactly one of ``size`` and ``psnr``),
    and the orbit views PSNR is measured on (``views`` renders of ``render_size``² pixels)."""

    size: int | None = None  # bytes: the file is at most this
    psnr: float | None = None  # dB against the original's renders: at least this
    views: int = 8
    render_size: int = 256
    fov_degrees: float = 60.0

    def validate(self) -> Target:
        if (self.size is None) == (self.psnr is None):
            raise SplatpackError("a target is a size or a PSNR (exactly one)")
        if self.views < 1 or self.render_size < 1:
            raise SplatpackError("target: views and render_size must be at least 1")
        return self


@dataclass
class Trial:
    """One level tried: its file (in the search's work folder), bytes and PSNR (dB, or None
    where the search needed none)."""

    quality: int
    path: Path
    bytes: int
    psnr: float | None = None


@dataclass
class _Search:
    """The state of one search: the scene, its grids (one per position bit depth: the curve-keys
    levels lie in their positions' key order) and the reference renders (made on first use)."""

    gs: GaussianSet
    target: Target
    work: Path
    say: Callable[[str], object]
    original: GaussianSet | None = None  # the scene PSNR is measured against (default gs)
    grids: dict[int, tuple] = field(default_factory=dict)
    cameras: tuple = ()
    reference: list = field(default_factory=list)
    trials: dict[int, Trial] = field(default_factory=dict)

    def trial(self, q: int, psnr: bool) -> Trial:
        """Level ``q`` coded on the grid shared by its position bits (and its PSNR when ``psnr``), once."""
        t = self.trials.get(q)
        if t is not None and (t.psnr is not None or not psnr):
            return t
        if t is None:
            cfg = GridCodecConfig.from_quality(q)
            if cfg.means.bits not in self.grids:
                self.grids[cfg.means.bits] = scene_grid(self.gs, cfg)
            grid_index, sort_info = self.grids[cfg.means.bits]
            sections, meta = encode_grid_scene(self.gs, cfg, grid_index, sort_info=sort_info)
            path = self.work / f"q{q}.spk"
            t = self.trials[q] = Trial(q, path, EncodedScene(sections, meta, len(self.gs)).write(path))
        if psnr:
            t.psnr = self.measure(t.path)
        self.say(f"quality {q}: {t.bytes:,} bytes" + ("" if t.psnr is None else f", {t.psnr:.2f} dB"))
        return t

    def measure(self, path: Path) -> float:
        """PSNR (dB) of the file at ``path`` against the original's renders."""
        if not self.reference:
            tg, original = self.target, self.gs if self.original is None else self.original
            self.cameras = orbit_cameras(original.means, tg.views, tg.render_size, tg.fov_degrees)
            self.reference = render_views(original, *self.cameras, tg.render_size)
        decoded = render_views(read_grid_scene(path), *self.cameras, self.target.render_size)
        return mean_psnr_ssim(decoded, self.reference)[0]


def search_quality(
    gs: GaussianSet,
    target: Target,
    work: str | Path,
    say: Callable[[str], object] = lambda _: None,
    source: str | Path | None = None,
    original: GaussianSet | None = None,
) -> tuple[Trial, list[Trial]]:
    """Bisect the quality ladder for ``target``; returns (the chosen trial, with its PSNR, and
    every trial in the order made). Trial files are written into ``work``. A target no level
    meets raises :class:`SplatpackError` naming the nearest reachable value (and ``source``, the
    file ``gs`` came from); ``say`` hears each trial (progress). PSNR is against the renders of
    ``original`` (the scene before pruning, say), by default of ``gs``."""
    target = target.validate()
    validate_gaussians(gs)
    s = _Search(gs, target, Path(work), say, original)
    levels = sorted(QUALITY_LEVELS)
    lo, hi = -1, len(levels)  # indices: for size, ``lo`` fits and ``hi`` does not; for PSNR the reverse
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if target.size is not None:
            ok = s.trial(levels[mid], psnr=False).bytes <= target.size
            lo, hi = (mid, hi) if ok else (lo, mid)
        else:
            ok = s.trial(levels[mid], psnr=True).psnr >= target.psnr
            lo, hi = (lo, mid) if ok else (mid, hi)
    if target.size is not None:
        if lo < 0:
            smallest = min(s.trials.values(), key=lambda t: t.bytes)
            raise SplatpackError(
                f"--target-size {target.size:,} bytes is below the smallest reachable: "
                f"{smallest.bytes:,} bytes at quality {smallest.quality}",
                source,
            )
        chosen = s.trial(levels[lo], psnr=True)
    else:
        if hi == len(levels):
            best = max(s.trials.values(), key=lambda t: t.psnr)
            raise SplatpackError(
                f"--target-psnr {target.psnr:g} dB is above the highest reachable: "
                f"{best.psnr:.2f} dB at quality {best.quality}",
                source,
            )
        chosen = s.trials[levels[hi]]
    return chosen, list(s.trials.values())


#: the fractions ``--allocate`` may prune (its model picks one, or none)
ALLOCATE_PRUNE = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)


def allocation_config(target: Target, to_refine: bool = False) -> AllocationConfig:
    """``--allocate``'s settings for ``target``: its views, every pruned fraction of
    :data:`ALLOCATE_PRUNE`, and with ``to_refine`` no lossy SH-rest bases (:func:`write_to_target`)."""
    return AllocationConfig(
        views=target.views,
        render_size=target.render_size,
        fov_degrees=target.fov_degrees,
        prune_fractions=ALLOCATE_PRUNE,
        **({"lossy_basis_ranks": ()} if to_refine else {}),
    )


def write_to_target(
    gs: GaussianSet,
    target: Target,
    out: str | Path,
    say: Callable[[str], object] = lambda _: None,
    source: str | Path | None = None,
    original: GaussianSet | None = None,
    allocate: bool = False,
    to_refine: bool = False,
) -> Trial | Allocation:
    """:func:`search_quality` (or with ``allocate``, ``--allocate``:
    :func:`splatpack.codecs.grid.allocate.allocate`, per-attribute bits, lossy JPEG XL, the SH
    rest's coding and pruning chosen by measured rate–distortion), then the chosen file moved to
    ``out`` (atomically: trials are written beside it); returns the chosen trial or allocation,
    its ``path`` now ``out``. ``to_refine``: the allocation is refined next (``--allocate
    --refine``), so its SH-rest basis coefficients stay lossless: refinement renders their
    rounding exactly but not lossy JPEG XL's error, and refined they give more PSNR per byte
    (``benchmarks/alloc_refine_lattice.py``)."""
    target = target.validate()
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix=".target-", dir=out.resolve().parent) as tmp:
        if allocate:
            cfg = allocation_config(target, to_refine)
            chosen, _ = allocate_for(
                gs, tmp, psnr=target.psnr, size=target.size, config=cfg, original=original, say=say, source=source
            )
        else:
            chosen, _ = search_quality(gs, target, tmp, say, source, original)
        os.replace(chosen.path, out)
    chosen.path = out
    return chosen


@dataclass
class Refined:
    """What :func:`refine_allocation` kept: the refined file (``kept``) or the allocation's, the
    refined file's bytes and PSNR, and the steps it trained."""

    kept: bool
    bytes: int
    psnr: float
    steps: int

    def describe(self, seconds: float) -> str:
        if self.kept:
            return f"refined {self.steps} steps in {seconds:g} s ({self.psnr:.2f} dB)"
        return f"not refined (refined it was {self.bytes:,} bytes at {self.psnr:.2f} dB)"


def refine_allocation(
    found: Allocation,
    target: Target,
    out: str | Path,
    seconds: float,
    backend: str = "auto",
    original: GaussianSet | None = None,
    console=None,
) -> Refined:
    """``--allocate --refine``: refine ``found`` (:func:`write_to_target`'s allocation, its file at
    ``out``) for ``seconds`` (:func:`splatpack.train.refine.refine_and_compress`) and replace
    ``out`` with the refined file only where that keeps the target's promise and helps: its PSNR
    on the target's orbit views (against ``original``, default the allocation's scene) is at
    least the allocation's, and with a size target it is within the size. Otherwise the
    allocation's file stays: refinement trains on other orbit views, and on a forward-facing
    capture seen from all around it can lose on the target's."""
    from splatpack.train.refine import refine_and_compress

    target, out = target.validate(), Path(out)
    original = found.scene if original is None else original
    with tempfile.TemporaryDirectory(prefix=".refine-", dir=out.resolve().parent) as tmp:
        refined = Path(tmp) / out.name
        metrics = refine_and_compress(
            found.scene, refined, seconds, 10, backend, console, original=original, codec=found.codec
        )
        psnr = _Search(original, target, Path(tmp), lambda _: None).measure(refined)  # the target's views
        size = int(metrics["size_bytes"])
        kept = psnr >= found.psnr and (target.size is None or size <= target.size)
        if kept:
            os.replace(refined, out)
    return Refined(kept, size, float(psnr), int(metrics["steps"]))
