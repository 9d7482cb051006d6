"""``splatpack bench``: rate–distortion of splat compressors on already-trained splats.

For every input splat (default: ``../shared/splats/plant.splat`` and ``biker.spz``) and every
tool × rate, the benchmark encodes the Gaussians, decodes them back, renders both the decoded
and the original Gaussians from the same orbit cameras (32 views around the scene's centre,
with splatpack's CPU rasteriser) and records

    tool, input, rate, bytes, psnr, ssim, encode_seconds, decode_seconds

(PSNR/SSIM of the decoded renders against the original's renders). Tools:

* ``splatpack`` — the self-organising attribute-grid scene (:mod:`splatpack.codecs.grid`)
  at several ``--quality`` levels;
* ``splatpack-alloc`` — the same codec with render-aware allocation
  (:mod:`splatpack.codecs.grid.allocate`, ``compress --target-psnr DB --allocate``) at several
  target PSNRs (measured by the search on its own 8 small views);
* ``splatpack-alloc-refine`` — ``compress --target-psnr DB --allocate --refine SECONDS``;
* ``splatpack-adaptive`` — quality levels with per-Gaussian precision (``compress
  --adaptive-precision``, ``drop_fraction`` of :mod:`splatpack.codecs.grid.lowbits`);
* ``splatpack-adaptive-refine`` — both (``compress --refine --adaptive-precision``);
* ``splatpack-refine`` — quality levels after ``compress --refine`` (:mod:`splatpack.train.refine`,
  a quantisation-aware self-distillation on other orbit views than these);
* ``spz`` — Niantic SPZ written by gsply (:func:`splatpack.formats.spz.save_spz`);
* ``sogpy`` — PlayCanvas SOG written by sogpy (PyPI, a Python port of splat-transform);
* ``splat-transform`` — PlayCanvas SOG written by ``@playcanvas/splat-transform`` (npm; installed
  on first use into ``~/.cache/splatpack/npm`` when ``npm`` is available);
* ``gsplat-png`` — gsplat's ``PngCompression`` without sorting (its sort needs CUDA PLAS), which
  crops the scene to a square number of Gaussians as gsplat does.

LPIPS (AlexNet, :mod:`splatpack.metrics.lpips`) is added to each row where its weights are
installed. A tool that cannot run here is recorded with its ``error`` and left out of the plot.
Results go to ``OUT/results.json``, the RD plot to ``OUT/rd.png`` and ``OUT/summary.json``
holds, per input, the size ratio of every single-rate peer to splatpack's curves at the peer's
PSNR and every curve's bytes at 40 and 45 dB (:func:`summarise`: log-bytes interpolated
linearly in PSNR between measured points, never extrapolated).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from splatpack.codecs.grid import DROP_FRACTION, GridCodecConfig, read_grid_scene, write_grid_scene
from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.atomic import atomic_write, atomic_write_text
from splatpack.formats import load_scene, path_size
from splatpack.formats.ply import save_ply
from splatpack.formats.sog import load_sog, save_sog
from splatpack.formats.spz import load_spz, save_spz
from splatpack.metrics import LPIPSUnavailable, lpips, mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras
from splatpack.spk.container import SpkReader

SHARED_SPLATS = Path(__file__).resolve().parents[3] / "shared" / "splats"  # ../shared beside the project root
TOOLS = (
    "splatpack",
    "splatpack-adaptive",
    "splatpack-adaptive-refine",
    "splatpack-alloc",
    "splatpack-alloc-refine",
    "splatpack-refine",
    "spz",
    "sogpy",
    "splat-transform",
    "sog-export",
    "gsplat-png",
)
#: the tools with a knob: several rates per input
CURVES = tuple(tool for tool in TOOLS if tool.startswith("splatpack"))
EQUAL_PSNR_LEVELS = (40.0, 45.0)
NPM_CACHE = Path.home() / ".cache" / "splatpack" / "npm"


@dataclass
class BenchConfig:
    inputs: list[Path] = field(default_factory=lambda: [SHARED_SPLATS / "plant.splat", SHARED_SPLATS / "biker.spz"])
    tools: tuple[str, ...] = TOOLS
    qualities: tuple[int, ...] = (0, 3, 4, 5, 6, 8)  # splatpack --quality levels
    #: splatpack-alloc --target-psnr values: 40–47 bracket the 40 and 45 dB columns (allocation
    #: searches on 8 views of 256 px and lands up to 2 dB under its target on the bench's views)
    alloc_psnrs: tuple[float, ...] = (40.0, 42.0, 45.0, 47.0, 50.0, 55.0, 58.0, 61.0)
    alloc_refine_psnrs: tuple[float, ...] = (55.0, 58.0)  # splatpack-alloc-refine --target-psnr values
    refine_qualities: tuple[int, ...] = (0, 3, 4, 5, 6)  # splatpack-refine --quality levels
    adaptive_qualities: tuple[int, ...] = (3, 4, 5, 6, 8)  # splatpack-adaptive --quality levels
    drop_fraction: float = DROP_FRACTION  # splatpack-adaptive --adaptive-precision F
    refine_seconds: float = 60.0  # compress --refine SECONDS
    views: int = 32
    size: int = 384  # square renders
    fov_degrees: float = 60.0
    max_gaussians: int = 0  # > 0: a random subset (quick runs)
    #: seconds an external tool (splat-transform) may take per input before its row is reported as
    #: timed out (its CPU k-means of an SH-3 palette runs for hours on two cores); 0 = no limit
    tool_timeout: float = 0.0
    #: SH-palette k-means iterations of splat-transform (its ``-i``) and sog-export; 10 is
    #: splat-transform's default
    sog_iterations: int = 10


# ---- tools: (encode, decode) pairs ----------------------------------------------------------------
# encode(gs, workdir) -> the output path; decode(path) -> GaussianSet


def _splatpack(quality: int, drop_fraction: float = 0.0):
    cfg = GridCodecConfig.from_quality(quality, drop_fraction=drop_fraction)

    def enc(gs: GaussianSet, work: Path) -> Path:
        out = work / f"scene-q{quality}-d{drop_fraction:g}.spk"
        write_grid_scene(out, gs, cfg)
        return out

    return enc, read_grid_scene


def _splatpack_alloc(psnr_target: float, refine_seconds: float = 0.0):
    from splatpack.apps.target import Target, refine_allocation, write_to_target

    def enc(gs: GaussianSet, work: Path) -> Path:
        out = work / f"scene-alloc{psnr_target:g}.spk"
        target = Target(psnr=psnr_target)
        found = write_to_target(gs, target, out, allocate=True, to_refine=bool(refine_seconds))
        if refine_seconds:  # as compress --allocate --refine: kept where it helps on the target's views
            refine_allocation(found, target, out, refine_seconds, "cpu", gs, Console(stderr=True, quiet=True))
        return out

    return enc, read_grid_scene


def _splatpack_refine(quality: int, seconds: float, drop_fraction: float = 0.0):
    from splatpack.train.refine import refine_and_compress

    codec = GridCodecConfig.from_quality(quality, drop_fraction=drop_fraction) if drop_fraction else None

    def enc(gs: GaussianSet, work: Path) -> Path:
        out = work / f"scene-q{quality}-d{drop_fraction:g}-refined.spk"
        quiet = Console(stderr=True, quiet=True)
        refine_and_compress(gs, out, seconds, quality, backend="cpu", console=quiet, codec=codec)
        return out

    return enc, read_grid_scene


def _spz():
    def enc(gs: GaussianSet, work: Path) -> Path:
        save_spz(gs, work / "scene.spz")
        return work / "scene.spz"

    return enc, load_spz


def _sogpy():
    import SogPython  # sogpy's module name; optional

    def enc(gs: GaussianSet, work: Path) -> Path:
        save_ply(gs, work / "in.ply")
        SogPython.convert_ply_to_sog(str(work / "in.ply"), str(work / "sogpy.sog"))
        return work / "sogpy.sog"

    return enc, load_sog


def splat_transform_bin() -> Path:
    """The ``splat-transform`` executable, installed from npm on first use."""
    exe = NPM_CACHE / "node_modules" / ".bin" / "splat-transform"
    if not exe.exists():
        if shutil.which("npm") is None:
            raise SplatpackError("npm is not installed (needed for @playcanvas/splat-transform)")
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            ["npm", "install", "--prefix", str(NPM_CACHE), "--no-audit", "--no-fund", "@playcanvas/splat-transform"],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0 or not exe.exists():
            raise SplatpackError(f"npm install @playcanvas/splat-transform failed: {r.stderr.strip()[-300:]}")
    return exe


def _splat_transform(timeout: float = 0.0, iterations: int = 10):
    exe = splat_transform_bin()

    def enc(gs: GaussianSet, work: Path) -> Path:
        save_ply(gs, work / "in.ply")
        out = work / "splat-transform.sog"
        # -w: overwrite; -g cpu: k-means on the CPU (the default asks WebGPU for a GPU); -i: the SH
        # palette's k-means iterations
        cmd = [str(exe), "-w", "-g", "cpu", "-i", str(iterations), str(work / "in.ply"), str(out)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout or None)
        except subprocess.TimeoutExpired:
            raise SplatpackError(f"splat-transform timed out after {timeout:g} s") from None
        if r.returncode != 0 or not out.exists():
            raise SplatpackError(f"splat-transform failed: {(r.stderr or r.stdout).strip()[-300:]}")
        return out

    return enc, load_sog


def _sog_export(iterations: int = 10):
    """SOG v2 as splat-transform writes it (its layout, palette size and k-means iterations), by
    splatpack's own writer (``export --format sog``, :mod:`splatpack.formats.sog`) without its
    canonical frames: a stand-in for splat-transform where its single-threaded CPU k-means of an
    SH-3 palette does not finish (the torch k-means here takes minutes)."""

    def enc(gs: GaussianSet, work: Path) -> Path:
        return save_sog(gs, work / "sog-export.sog", iterations=iterations, canonical_frames=False)

    return enc, load_sog


def _gsplat_png():
    from gsplat.compression import PngCompression  # optional

    codec = PngCompression(use_sort=False, verbose=False)

    def enc(gs: GaussianSet, work: Path) -> Path:
        out = work / "gsplat-png"
        out.mkdir(exist_ok=True)
        splats = {k: getattr(gs, k).detach().clone().float() for k in ("means", "scales", "quats", "opacities", "sh0")}
        if gs.shN.shape[1]:
            splats["shN"] = gs.shN.detach().clone().float()  # k-means through torchpq (CUDA): fails here
        codec.compress(str(out), splats)
        return out

    def dec(path: Path) -> GaussianSet:
        s = codec.decompress(str(path))
        n = len(s["means"])
        shN = s.get("shN", torch.zeros(n, 0, 3))
        return GaussianSet(
            s["means"], s["quats"], s["scales"], s["opacities"].reshape(n), s["sh0"].reshape(n, 1, 3), shN
        )

    return enc, dec


def tool_runs(cfg: BenchConfig) -> list[tuple[str, str, Callable[[], tuple[Callable, Callable]]]]:
    """(tool, rate label, factory) for every configured tool × rate."""
    single_rate = {
        "spz": _spz,
        "sogpy": _sogpy,
        "splat-transform": lambda: _splat_transform(cfg.tool_timeout, cfg.sog_iterations),
        "sog-export": lambda: _sog_export(cfg.sog_iterations),
        "gsplat-png": _gsplat_png,
    }
    runs = []
    for tool in cfg.tools:
        if tool == "splatpack":
            runs += [("splatpack", f"q{q}", (lambda q=q: _splatpack(q))) for q in cfg.qualities]
        elif tool == "splatpack-adaptive":
            runs += [
                ("splatpack-adaptive", f"q{q}", (lambda q=q: _splatpack(q, cfg.drop_fraction)))
                for q in cfg.adaptive_qualities
            ]
        elif tool == "splatpack-adaptive-refine":
            runs += [
                (
                    "splatpack-adaptive-refine",
                    f"q{q}",
                    (lambda q=q: _splatpack_refine(q, cfg.refine_seconds, cfg.drop_fraction)),
                )
                for q in cfg.refine_qualities
            ]
        elif tool == "splatpack-refine":
            runs += [
                ("splatpack-refine", f"q{q}", (lambda q=q: _splatpack_refine(q, cfg.refine_seconds)))
                for q in cfg.refine_qualities
            ]
        elif tool == "splatpack-alloc":
            runs += [("splatpack-alloc", f"{p:g}dB", (lambda p=p: _splatpack_alloc(p))) for p in cfg.alloc_psnrs]
        elif tool == "splatpack-alloc-refine":
            runs += [
                ("splatpack-alloc-refine", f"{p:g}dB", (lambda p=p: _splatpack_alloc(p, cfg.refine_seconds)))
                for p in cfg.alloc_refine_psnrs
            ]
        elif tool in single_rate:
            runs.append((tool, "default", single_rate[tool]))
        else:
            raise SplatpackError(f"unknown tool {tool!r} (known: {', '.join(TOOLS)})")
    return runs


# ---- the benchmark ----------------------------------------------------------------------------------


def run_bench(cfg: BenchConfig, out_dir: Path, console=None) -> list[dict[str, Any]]:
    """Run every tool × rate on every input; write ``results.json`` (after every row) and ``rd.png``."""
    console = console or Console(stderr=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for inp in cfg.inputs:
        inp = Path(inp)
        if not inp.exists():
            raise SplatpackError("input splat does not exist", inp)
        gs = load_scene(inp)
        if cfg.max_gaussians and len(gs) > cfg.max_gaussians:
            keep = torch.randperm(len(gs), generator=torch.Generator().manual_seed(0))[: cfg.max_gaussians]
            gs = gs.subset(keep.sort().values)
        poses, K = orbit_cameras(gs.means, cfg.views, cfg.size, cfg.fov_degrees)
        reference = render_views(gs, poses, K, cfg.size)
        console.print(f"[bold]{inp.name}[/]: {len(gs):,} Gaussians, SH degree {gs.sh_degree}, {cfg.views} views")
        for tool, rate, factory in tool_runs(cfg):
            row: dict[str, Any] = {"tool": tool, "input": inp.name, "rate": rate, "num_gaussians": len(gs)}
            with tempfile.TemporaryDirectory(prefix="splatpack-bench-") as tmp:
                try:
                    enc, dec = factory()
                    t0 = time.perf_counter()
                    path = enc(gs, Path(tmp))
                    t1 = time.perf_counter()
                    back = dec(path)
                    t2 = time.perf_counter()
                    decoded = render_views(back, poses, K, cfg.size)
                    psnr_v, ssim_v = mean_psnr_ssim(decoded, reference)
                    row.update(lpips=mean_lpips(decoded, reference))
                    row.update(
                        bytes=path_size(path),
                        psnr=psnr_v,
                        ssim=ssim_v,
                        encode_seconds=t1 - t0,
                        decode_seconds=t2 - t1,
                        decoded_gaussians=len(back),
                    )
                    if tool.startswith("splatpack"):
                        row["setting"] = grid_setting(path)
                    console.print(
                        f"  {tool:<16}{rate:<8}{row['bytes']:>12,} B  {psnr_v:6.2f} dB  SSIM {ssim_v:.4f}  "
                        f"enc {t1 - t0:6.2f} s  dec {t2 - t1:6.2f} s  {row.get('setting', '')}"
                    )
                except Exception as e:  # a tool that cannot run here is reported, not fatal
                    row["error"] = (
                        f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
                    )
                    console.print(f"  {tool:<16}{rate:<8}[yellow]skipped: {row['error']}")
            rows.append(row)
            # after every row, so that an interrupted run keeps the rows it measured
            atomic_write_text(out_dir / "results.json", json.dumps(rows, indent=2) + "\n")
    atomic_write_text(out_dir / "results.json", json.dumps(rows, indent=2) + "\n")
    summary = summarise(rows)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    for name, s in summary.items():
        for peer, r in s["peer_ratios"].items():
            said = ", ".join(f"{k} {v:.2f}x" if v else f"{k} out of range" for k, v in r["ratio"].items())
            console.print(f"{name}: {peer} at {r['psnr']:.2f} dB is {r['bytes']:,} B; smaller by {said}")
    plot_rd(rows, out_dir / "rd.png")
    return rows


def grid_setting(path: Path) -> str:
    """A grid ``.spk``'s per-attribute coding, e.g. ``means 12, sh0 8/d1, shN basis 16x5`` (a
    basis with zeroed SH rests: ``basis 40x7 z35%``, the share of Gaussians zeroed)."""
    with SpkReader(path) as r:
        attrs, n = r.meta.get("attributes", {}), r.num_gaussians
    parts = []
    for name, e in attrs.items():
        mode = e.get("mode", "grid")
        if mode == "basis":
            zero = f" z{e['zero'] / n:.0%}" if e.get("zero") and n else ""
            parts.append(f"{name} basis {e['rank']}x{e['bits']}{zero}")
        elif mode in ("palette", "rvq"):
            parts.append(f"{name} {mode} {e['size']}")
        else:
            parts.append(f"{name} {e['bits']}" + (f"/d{e['distance']:g}" if e.get("distance") else ""))
    return ", ".join(parts)


def mean_lpips(images: list[torch.Tensor], references: list[torch.Tensor]) -> float | None:
    """Mean LPIPS-Alex over the image pairs, or None where its weights are not installed."""
    try:
        return float(sum(lpips(a, b) for a, b in zip(images, references)) / len(images))
    except LPIPSUnavailable:
        return None


def bytes_at_psnr(points: list[tuple[int, float]], target: float) -> float | None:
    """Bytes at ``target`` dB on a measured curve of (bytes, PSNR) points: log-bytes linear in
    PSNR between the two points that bracket it (None outside the measured range). The curve
    is taken as its upper-left hull: a point beaten by a smaller, better one is dropped."""
    pts = sorted(points)
    hull = [p for i, p in enumerate(pts) if all(q[1] < p[1] for q in pts[:i])]
    for (b0, p0), (b1, p1) in itertools.pairwise(hull):
        if p0 <= target <= p1:
            t = 0.0 if p1 == p0 else (target - p0) / (p1 - p0)
            return float(np.exp(np.log(b0) + t * (np.log(b1) - np.log(b0))))
    if hull and hull[0][1] >= target:  # the smallest point already meets it: at most its bytes
        return None if hull[0][1] > target else float(hull[0][0])
    return None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per input: each peer's size over each of splatpack's curves at the peer's PSNR
    (``peer_ratios``) and each curve's bytes at :data:`EQUAL_PSNR_LEVELS` (``bytes_at``)."""
    ok = [r for r in rows if "error" not in r]
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["input"] for r in ok):
        mine = [r for r in ok if r["input"] == name]
        curves = {
            tool: [(r["bytes"], r["psnr"]) for r in mine if r["tool"] == tool]
            for tool in CURVES
            if any(r["tool"] == tool for r in mine)
        }
        ratios = {}
        for r in mine:
            if r["tool"] in CURVES:
                continue
            at = {tool: bytes_at_psnr(pts, r["psnr"]) for tool, pts in curves.items()}
            ratios[f"{r['tool']} {r['rate']}"] = {
                "bytes": r["bytes"],
                "psnr": r["psnr"],
                "ratio": {tool: (r["bytes"] / b if b else None) for tool, b in at.items()},
            }
        levels = {
            f"{level:g} dB": {tool: bytes_at_psnr(pts, level) for tool, pts in curves.items()}
            for level in EQUAL_PSNR_LEVELS
        }
        out[name] = {"peer_ratios": ratios, "bytes_at": levels}
    return out


def plot_rd(rows: list[dict[str, Any]], path: Path) -> None:
    """PSNR against bytes, one panel per input, one line per tool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ok = [r for r in rows if "error" not in r]
    inputs = sorted({r["input"] for r in rows})
    fig, axes = plt.subplots(1, max(1, len(inputs)), figsize=(6 * max(1, len(inputs)), 4.5), squeeze=False)
    for ax, name in zip(axes[0], inputs):
        for tool in dict.fromkeys(r["tool"] for r in ok):
            pts = sorted((r["bytes"] / 1e6, r["psnr"]) for r in ok if r["input"] == name and r["tool"] == tool)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=tool)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
        ax.set_xlabel("file size (MB)")
        ax.set_ylabel("PSNR vs original renders (dB)")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no rows for this input (every tool failed): no legend
            ax.legend()
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
