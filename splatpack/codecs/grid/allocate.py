"""Render-aware bit allocation for grid scenes: each attribute's coding chosen by rate–distortion
measured on renders, not one bit depth per attribute from a fixed ladder.

Sensitivity-aware compression (Niedermayr, Stumpfegger & Westermann, "Compressed 3D Gaussian
Splatting for Accelerated Novel View Synthesis", CVPR 2024, §4.1) measures how much each
parameter moves the renders and spends precision there; here the measurement is made per
attribute grid and per coding option, and the choice is the classic operational
rate–distortion allocation over independent quantisers (Shoham & Gersho, "Efficient bit
allocation for an arbitrary set of quantizers", IEEE TASSP 36(9), 1988).

For every attribute a (positions, colour DC, SH rest, scales, rotations, opacity) and option o
(its bits; lossy JPEG XL; for the SH rest also a low-rank basis of rank r, :mod:`.basis`,
with the SH rest of a fraction z of Gaussians zeroed and left out of the coefficients, or band
culling at τ, Reduced-3DGS, before grid planes):

* **rate** R_a(o): the bytes of a's sections coded alone on the scene's one grid (the
  sections are independent, so a file is R = Σ_a R_a(o_a) + the grid mask and header); the
  positions as curve keys (:mod:`.curve_keys`) on the grid of their own key order;
* **distortion** ΔD_{a,v}(o): the render MSE in view v of the scene with a at o and every other
  attribute at the reference coding (quality 10), minus the reference's own MSE.

Quantisation errors of different attributes are independent, so the MSE of an allocation is
modelled as D_v ≈ D_ref,v + Σ_a ΔD_{a,v}(o_a) and its PSNR as the mean over views of
−10 log₁₀ D_v (the bench's measure, :func:`splatpack.metrics.mean_psnr_ssim`). For a multiplier
λ ≥ 0 each attribute independently takes argmin_o R_a(o) + λ Σ_v ΔD_{a,v}(o); sweeping λ
traces the lower convex hull of all (R, D) allocations (Everett's theorem). The candidate that
meets the target by the model is then coded (in its positions' key order; assembled from the
coded sections already made where positions are an image), decoded and rendered; if the
measured PSNR falls short, the next candidate up is tried.

**Pruning** joins the search as one more dimension: dropping the fraction p of Gaussians that
contribute least to orbit renders (Σ α T, :mod:`splatpack.compress.pruning`) adds its measured
ΔD_{prune,v}(p) to the model and scales the attribute bytes by (1 − p). A pruned candidate is
verified by sorting and coding the pruned scene for real.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid.codec import read_grid_scene
from splatpack.codecs.grid.config import ATTRIBUTES, ORDER0_ATTRIBUTES, AttributeCoding, GridCodecConfig
from splatpack.codecs.grid.encode import (
    Coded,
    best_frames,
    check_grid_index,
    code_attribute,
    encode_grid_scene,
    grid_scene_parts,
    scene_grid,
)
from splatpack.codecs.grid.layout import GridCells
from splatpack.codecs.grid.values import coded_values, float64_numpy
from splatpack.compress.pruning import kept_indices, orbit_contributions
from splatpack.compress.sh_basis import culled_gaussians, zeroed_sh_rest
from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.frames import canonical_gaussians
from splatpack.core.validate import validate_gaussians
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras

__all__ = [
    "Allocation",
    "AllocationConfig",
    "Measured",
    "Option",
    "allocate",
    "candidates",
    "predicted_psnr",
    "rate_distortion",
]

REFERENCE_QUALITY = 10  # every other attribute at this level while one is measured
MSE_FLOOR = 1e-12  # a view whose model MSE is ≤ 0 (identical renders) counts as 120 dB
#: the SH-rest bases allocation tries, (rank, coefficient bits): ranks 4–32 at 4–6 bits, and for
#: high targets rank 32 at 7 bits and rank 40 at 6 and 7, which with a third of the SH rests
#: zeroed codes the full lego's SH rest 25 % smaller than 5-bit planes at equal render error
#: (README: "Twelfth round")
BASIS_OPTIONS = tuple((r, b) for r in (4, 8, 12, 16, 24, 32) for b in (4, 5, 6)) + ((32, 7), (40, 6), (40, 7))


@dataclass(frozen=True)
class Option:
    """One coding of one attribute: ``bits`` per value, lossy JPEG XL at Butteraugli
    ``distance`` (0: lossless), and for the SH rest a basis ``rank`` (0: every coefficient as
    its own plane, ``sh_mode="grid"``) or band culling at ``cull`` = τ
    (:func:`splatpack.compress.sh_basis.culled_gaussians` with render-contribution weights), and
    with a basis the fraction ``zero`` of Gaussians whose SH rest is zeroed
    (:func:`splatpack.compress.sh_basis.zeroed_sh_rest`, render-weighted)."""

    attribute: str
    bits: int
    rank: int = 0
    distance: float = 0.0
    cull: float = 0.0  # SH rest: bands culled first at this τ (Reduced-3DGS, render-weighted)
    zero: float = 0.0  # SH rest in a basis: the fraction of Gaussians whose SH rest is zeroed

    def apply(self, cfg: GridCodecConfig) -> GridCodecConfig:
        """``cfg`` with this attribute coded this way (JPEG XL; lossless rotations and opacities
        with the order-0 ``ans`` codec, as the quality levels code them)."""
        extra = {}
        if self.attribute == "shN":
            extra = {"sh_mode": "basis", "basis_rank": self.rank} if self.rank else {"sh_mode": "grid"}
        order0 = self.attribute in ORDER0_ATTRIBUTES and not self.distance
        coding = AttributeCoding(self.bits, "ans" if order0 else "jxl", self.distance)
        return dataclasses.replace(cfg, **{self.attribute: coding}, **extra)

    def label(self) -> str:
        return f"{self.attribute} {self.short()}"

    def short(self) -> str:
        rank = f"/r{self.rank}" if self.rank else ""
        lossy = f"/d{self.distance:g}" if self.distance else ""
        zero = f"/z{self.zero:g}" if self.zero else ""
        return f"{self.bits}{rank}{lossy}{zero}" + (f"/c{self.cull:g}" if self.cull else "")


@dataclass
class AllocationConfig:
    """The options measured (bit ranges per attribute, SH-rest basis ranks) and the orbit views
    (``views`` renders of ``render_size``² pixels) distortion is measured on."""

    bits: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {
            "means": (8, 16),
            "sh0": (4, 10),
            "shN": (3, 7),
            "scales": (4, 10),
            "quats": (4, 10),
            "opacities": (4, 11),
        }
    )
    #: SH rest: the low-rank bases tried, as (rank, coefficient bits)
    basis_options: tuple[tuple[int, int], ...] = BASIS_OPTIONS
    #: lossy JPEG XL options at ``lossy_bits`` (positions and the rotations' index channel are
    #: never lossy: a blurred position moves a Gaussian, a blurred index picks another axis)
    distances: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: {
            "sh0": (0.5, 1.0, 2.0),
            "shN": (0.6, 1.0, 2.0),
            "scales": (0.5, 1.0, 2.0),
            "opacities": (0.5, 1.0),
        }
    )
    lossy_bits: int = 8
    #: SH rest: the basis ranks whose coefficient planes are also tried lossy (at ``lossy_bits``
    #: and each of ``distances["shN"]``; lossy grids of all 3·D planes code larger at equal PSNR)
    lossy_basis_ranks: tuple[int, ...] = (24, 32, 40)
    #: SH rest: band culling thresholds τ, each coded as grid planes of ``cull_bits``
    cull_taus: tuple[float, ...] = (1e-4, 1e-3)
    cull_bits: tuple[int, ...] = (4, 5, 6)
    #: SH rest: the fractions of Gaussians whose SH rest is zeroed (a mask and the others'
    #: coefficients), each tried with the ``basis_options`` whose rank is in ``zero_ranks``
    zero_fractions: tuple[float, ...] = (0.2, 0.35)
    zero_ranks: tuple[int, ...] = (24, 32, 40)
    #: fractions of the least-contributing Gaussians the search may drop (0: never prune)
    prune_fractions: tuple[float, ...] = (0.0,)
    views: int = 8
    render_size: int = 256
    fov_degrees: float = 60.0

    def options(self, attributes: list[str]) -> dict[str, list[Option]]:
        out = {}
        for a in attributes:
            lo, hi = self.bits[a]
            out[a] = [Option(a, b) for b in range(lo, hi + 1)]
            if a == "shN":
                out[a] += [Option(a, b, r) for r, b in self.basis_options]
                out[a] += [Option(a, b, cull=t) for t in self.cull_taus for b in self.cull_bits]
                zeroed = [(r, b) for r, b in self.basis_options if r in self.zero_ranks]
                out[a] += [Option(a, b, r, zero=z) for r, b in zeroed for z in self.zero_fractions]
            ranks = self.lossy_basis_ranks if a == "shN" else (0,)
            out[a] += [Option(a, self.lossy_bits, r, d) for r in ranks for d in self.distances.get(a, ())]
        return out


@dataclass
class Measured:
    """An option's coded sections, bytes and per-view render MSE increase over the reference."""

    option: Option
    coded: Coded
    bytes: int
    delta_mse: np.ndarray


@dataclass
class Allocation:
    """A choice of one option per attribute, its modelled bytes and PSNR, and (once made) the
    file's measured bytes and PSNR."""

    options: dict[str, Option]
    predicted_bytes: int
    predicted_psnr: float
    prune: float = 0.0  # the fraction of Gaussians dropped first
    scene: GaussianSet | None = None  # the Gaussians coded (pruned, SH bands culled), once made
    codec: GridCodecConfig | None = None  # the grid codec's settings of the file, once made
    bytes: int | None = None
    psnr: float | None = None
    path: Path | None = None

    @property
    def num_gaussians(self) -> int | None:
        """Gaussians in the file, once made."""
        return None if self.scene is None else len(self.scene)

    def config(self, base: GridCodecConfig) -> GridCodecConfig:
        for o in self.options.values():
            base = o.apply(base)
        return base

    def describe(self) -> str:
        pruned = f"pruned {self.prune:.0%}, " if self.prune else ""
        return pruned + ", ".join(o.label() for o in self.options.values())


def predicted_psnr(reference_mse: np.ndarray, deltas: list[np.ndarray]) -> float:
    """Mean over views of −10 log₁₀(D_ref,v + Σ_a ΔD_{a,v}) (the additive error model)."""
    d = np.maximum(reference_mse + np.sum(deltas, axis=0), MSE_FLOOR)
    return float(np.mean(-10.0 * np.log10(d)))


def candidates(
    table: dict[str, list[Measured]], reference_mse: np.ndarray, overhead: int, steps: int = 400
) -> list[Allocation]:
    """The allocations on the lower convex hull of (bytes, Σ_v MSE): for each λ of a log sweep
    every attribute takes argmin R + λ ΣΔD. Sorted by bytes, distinct."""
    seen: dict[tuple, Allocation] = {}
    total = {a: np.array([m.delta_mse.sum() for m in ms]) for a, ms in table.items()}
    rates = {a: np.array([m.bytes for m in ms], float) for a, ms in table.items()}
    for lam in np.concatenate([[0.0], np.logspace(0, 14, steps), [np.inf]]):
        pick = {}
        for a, ms in table.items():
            cost = total[a] if np.isinf(lam) else rates[a] + lam * total[a]
            # ties (equal cost) go to the smaller file, then the smaller distortion
            pick[a] = ms[int(np.lexsort((total[a], rates[a], cost))[0])]
        key = tuple(m.option for m in pick.values())
        if key not in seen:
            seen[key] = Allocation(
                {a: m.option for a, m in pick.items()},
                overhead + sum(m.bytes for m in pick.values()),
                predicted_psnr(reference_mse, [m.delta_mse for m in pick.values()]),
            )
    return sorted(seen.values(), key=lambda c: (c.predicted_bytes, -c.predicted_psnr))


@dataclass
class _Allocator:
    gs: GaussianSet
    original: GaussianSet
    cfg: AllocationConfig
    work: Path
    say: Callable[[str], object]
    base: GridCodecConfig = field(default_factory=lambda: GridCodecConfig.from_quality(REFERENCE_QUALITY))
    frames: str = "turned"
    values: dict = field(default_factory=dict)
    gi: np.ndarray | None = None
    cells: GridCells | None = None
    sort_info: dict = field(default_factory=dict)
    cameras: tuple = ()
    reference: list = field(default_factory=list)
    made: int = 0
    weights: np.ndarray | None = None  # render contributions (pruning, culling), on first use
    culled: dict = field(default_factory=dict)  # τ → the SH rest with bands culled, coded domain
    zeroed: dict = field(default_factory=dict)  # z → the SH rest with that fraction zeroed, coded domain
    key_cells: dict = field(default_factory=dict)  # position bits → the grid in their curve-key order

    def contributions(self) -> np.ndarray:
        if self.weights is None:
            self.say(f"measuring the render contribution of {len(self.gs):,} Gaussians")
            self.weights = orbit_contributions(self.gs).numpy()
        return self.weights

    def prepare(self) -> None:
        """Frames, the grid (one sort), coded values and the original's renders."""
        turned = canonical_gaussians(self.gs, order_scales=False)
        canonical = canonical_gaussians(self.gs)
        self.gi, self.sort_info = scene_grid(self.gs, self.base, canonical)
        self.gi = check_grid_index(self.gi, len(self.gs))
        self.cells = GridCells.of(self.gi)
        # the frames the ladder's ``best`` would keep, decided once at the middle of the ranges
        self.frames = best_frames(turned, canonical, self.cells, GridCodecConfig.from_quality(6))
        self.base = dataclasses.replace(self.base, frames=self.frames)
        self.values = coded_values(turned if self.frames == "turned" else canonical, self.base)
        self.cameras = orbit_cameras(self.original.means, self.cfg.views, self.cfg.render_size, self.cfg.fov_degrees)
        self.reference = render_views(self.original, *self.cameras, self.cfg.render_size)

    def code(self, option: Option) -> Coded:
        a = option.attribute
        values = self.values[a]
        if option.cull:
            if option.cull not in self.culled:
                g, _ = culled_gaussians(self.gs, option.cull, self.contributions())
                self.culled[option.cull] = float64_numpy(g.shN).reshape(len(g), -1)
            values = self.culled[option.cull]
        if option.zero:
            if option.zero not in self.zeroed:
                g = zeroed_sh_rest(self.gs, option.zero, self.contributions())
                self.zeroed[option.zero] = float64_numpy(g.shN).reshape(len(g), -1)
            values = self.zeroed[option.zero]
        return code_attribute(a, values, self.cells, option.apply(self.base))

    def rate(self, option: Option, coded: Coded) -> int:
        """The bytes ``option`` costs in a file. Curve-key positions lie on the grid of their own
        key order (:mod:`.curve_keys`), not the shared one: there they code as keys, whose bytes
        are counted, while the shared grid's image of the same values serves the renders."""
        if option.attribute == "means" and self.base.means_encoding == "curve-keys":
            cfg = option.apply(self.base)
            if cfg.means.bits not in self.key_cells:
                self.key_cells[cfg.means.bits] = GridCells.of(scene_grid(self.gs, cfg)[0])
            coded = code_attribute("means", self.values["means"], self.key_cells[cfg.means.bits], cfg)
        return sum(len(s.payload) for s in coded[0])

    def write(self, coded: dict[str, Coded], cfg: GridCodecConfig, name: str) -> tuple[Path, int]:
        ordered = {a: coded[a] for a in ATTRIBUTES if a in self.values}  # the encoder's order
        sections, meta = grid_scene_parts(
            ordered, self.gi, self.cells, int(self.gs.sh_degree), cfg, self.sort_info, self.frames
        )
        path = self.work / name
        return path, EncodedScene(sections, meta, len(self.gs)).write(path)

    def measure_table(self) -> tuple[dict[str, list[Measured]], np.ndarray, int]:
        """Every option of every attribute: (table, the reference's per-view MSE, overhead bytes)."""
        ref_options = {a: Option(a, getattr(self.base, a).bits) for a in self.values}
        ref_coded = {a: self.code(o) for a, o in ref_options.items()}
        path, size = self.write(ref_coded, self.base, "reference.spk")
        reference_mse = self.mse_of(read_grid_scene(path))
        overhead = size - sum(len(s.payload) for c in ref_coded.values() for s in c[0])
        options = self.cfg.options(list(self.values))
        count, done = sum(len(v) for v in options.values()), 0
        table: dict[str, list[Measured]] = {}
        for a, opts in options.items():
            table[a] = []
            for o in opts:
                coded = self.code(o)
                path, _ = self.write({**ref_coded, a: coded}, o.apply(self.base), "option.spk")
                delta = np.maximum(self.mse_of(read_grid_scene(path)) - reference_mse, 0.0)
                nbytes = self.rate(o, coded)
                table[a].append(Measured(o, coded, nbytes, delta))
                done += 1
                self.say(f"measured {done}/{count}: {o.label()}: {nbytes:,} bytes")
        return table, reference_mse, overhead

    def pruned(self, fractions) -> dict[float, tuple[GaussianSet, np.ndarray, torch.Tensor]]:
        """For each fraction p > 0: the scene without the p least-contributing Gaussians, its
        per-view render MSE increase over ``gs`` (both against the original's renders) and the
        indices kept."""
        fractions = [p for p in fractions if p > 0]
        if not fractions:
            return {}
        weights = torch.from_numpy(self.contributions())
        base = self.mse_of(self.gs)
        out = {}
        for p in fractions:
            keep = kept_indices(weights, p)
            g = self.gs.subset(keep)
            out[p] = (g, np.maximum(self.mse_of(g) - base, 0.0), keep)
            self.say(f"pruning {p:.0%}: {len(g):,} Gaussians left")
        return out

    def mse_of(self, gs: GaussianSet) -> np.ndarray:
        decoded = render_views(gs, *self.cameras, self.cfg.render_size)
        return np.array([float(((a.double() - b.double()) ** 2).mean()) for a, b in zip(decoded, self.reference)])

    def make(self, c: Allocation, table: dict[str, list[Measured]], pruned: dict) -> Allocation:
        """Make ``c``'s file (assembled from the coded sections, or the pruned scene sorted and
        coded anew), then measure its bytes and PSNR."""
        self.made += 1
        path = self.work / f"allocation-{self.made}.spk"
        g, keep = (pruned[c.prune][0], pruned[c.prune][2].numpy()) if c.prune else (self.gs, slice(None))
        shn = c.options.get("shN")
        if shn is not None and shn.cull:
            g, _ = culled_gaussians(g, shn.cull, self.contributions()[keep])
        if shn is not None and shn.zero:
            g = zeroed_sh_rest(g, shn.zero, self.contributions()[keep])
        c.scene, c.codec = g, c.config(self.base)
        if c.prune or c.codec.means_encoding == "curve-keys":  # sorted anew: its own key order
            sections, meta = encode_grid_scene(g, c.codec)
            c.path, c.bytes = path, EncodedScene(sections, meta, len(g)).write(path)
        else:
            coded = {a: next(m.coded for m in table[a] if m.option == o) for a, o in c.options.items()}
            c.path, c.bytes = self.write(coded, c.codec, path.name)
        decoded = render_views(read_grid_scene(c.path), *self.cameras, self.cfg.render_size)
        c.psnr = mean_psnr_ssim(decoded, self.reference)[0]
        self.say(f"allocation {c.describe()}: {c.bytes:,} bytes, {c.psnr:.2f} dB")
        return c


def _measured_hull(al: _Allocator) -> tuple[list[Allocation], dict[str, list[Measured]], dict]:
    """(the hull candidates over every pruned fraction, sorted by bytes; the option table; the
    pruned scenes) of ``al``'s scene, measured."""
    al.prepare()
    table, reference_mse, overhead = al.measure_table()
    pruned = al.pruned(al.cfg.prune_fractions)
    hull = candidates(table, reference_mse, overhead)
    for p, (g, delta, _) in pruned.items():
        scale = len(g) / len(al.gs)
        for c in candidates(table, reference_mse + delta, overhead):
            c.prune, c.predicted_bytes = p, overhead + round(scale * (c.predicted_bytes - overhead))
            hull.append(c)
    hull.sort(key=lambda c: (c.predicted_bytes, -c.predicted_psnr))
    return hull, table, pruned


def rate_distortion(
    gs: GaussianSet,
    work: str | Path,
    *,
    config: AllocationConfig | None = None,
    original: GaussianSet | None = None,
    say: Callable[[str], object] = lambda _: None,
) -> tuple[list[Allocation], dict[str, list[Measured]]]:
    """What allocation knows before it makes a file: (the modelled hull candidates, every
    pruned fraction, sorted by bytes; each attribute's measured options). Nothing is made, so
    their ``bytes``/``psnr`` are None (benchmarks/allocation_hull.py)."""
    validate_gaussians(gs)
    with torch.no_grad():
        al = _Allocator(gs, gs if original is None else original, config or AllocationConfig(), Path(work), say)
        hull, table, _ = _measured_hull(al)
    return hull, table


def allocate(
    gs: GaussianSet,
    work: str | Path,
    *,
    psnr: float | None = None,
    size: int | None = None,
    config: AllocationConfig | None = None,
    original: GaussianSet | None = None,
    say: Callable[[str], object] = lambda _: None,
    source: str | Path | None = None,
) -> tuple[Allocation, list[Allocation]]:
    """The smallest allocation whose measured PSNR (dB, against the renders of ``original``,
    default ``gs``) is at least ``psnr``, or the best-modelled one whose file is at most
    ``size`` bytes (exactly one of them). Returns (the chosen allocation, its file written in
    ``work`` and measured; every hull candidate). A target out of reach raises
    :class:`SplatpackError` naming the reachable end (and ``source``)."""
    if (psnr is None) == (size is None):
        raise SplatpackError("an allocation targets a PSNR or a size (exactly one)")
    validate_gaussians(gs)
    with torch.no_grad():
        al = _Allocator(gs, gs if original is None else original, config or AllocationConfig(), Path(work), say)
        hull, table, pruned = _measured_hull(al)
        if psnr is not None:
            order = [c for c in hull if c.predicted_psnr >= psnr] or [max(hull, key=lambda c: c.predicted_psnr)]
            for c in order:  # cheapest first; the model can be optimistic, so measure
                if al.make(c, table, pruned).psnr >= psnr:
                    return c, hull
                if al.made >= 6:
                    break
            best = max((c for c in hull if c.psnr is not None), key=lambda c: c.psnr)
            raise SplatpackError(
                f"--target-psnr {psnr:g} dB is above the highest reachable by allocation: "
                f"{best.psnr:.2f} dB at {best.bytes:,} bytes",
                source,
            )
        fits = [c for c in hull if c.predicted_bytes <= size]
        for c in sorted(fits, key=lambda c: -c.predicted_psnr):
            if al.make(c, table, pruned).bytes <= size:
                return c, hull
        smallest = min(hull, key=lambda c: c.predicted_bytes)
        raise SplatpackError(
            f"--target-size {size:,} bytes is below the smallest allocation: about {smallest.predicted_bytes:,} bytes",
            source,
        )
