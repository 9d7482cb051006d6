"""What the low-rank SH generators and band culling are worth on SH-3 splats (issue 15, item 2).

For each input (default: the vanilla lego and fern runs of ``benchmarks/sh3_inputs.py``) and each
setting, the grid codec writes a ``.spk``; the decoded scene is rendered from orbit views and
compared with the original's renders (the bench's PSNR/SSIM, :func:`splatpack.metrics.mean_psnr_ssim`).
Settings, all at the quality ladder's level ``--quality`` for the other attributes:

* ``grid``: the SH rest as 15 RGB coefficient planes of ``shN.bits`` (the ladder's own choice);
* ``basis-r{r}-b{b}``: a shared PCA basis and r coefficient planes of b bits (``sh_mode="basis"``);
* ``cull-t{τ}``: the grid after Reduced-3DGS band culling (:func:`splatpack.compress.sh_basis.band_degrees`,
  bands whose view-averaged colour energy is below τ zeroed before coding: no format change);
* ``cullw-t{τ}``: the same with each Gaussian's energy scaled by its render contribution
  (:func:`splatpack.compress.pruning.contributions` over 12 other orbit views);
* ``prune-{f}``: the grid after removing the fraction f of Gaussians that contribute least;
* ``palette`` / ``rvq``: the SH palette (SOG's v2) and the residual VQ, for reference;
* ``lr2vq-r{r}-d{d}``: LR²VQ, measured here, not a codec mode: the SH rest projected on the
  weighted PCA basis of rank r, the coefficients split into r/d sub-vectors of d, each
  sub-space k-means'd to 256 codewords (ordered by their first coordinate) whose labels are laid
  on the sorted grid and coded as 8-bit lossless JPEG XL or order-0 ANS, the smaller; bytes are the
  grid file's without its SH rest plus the labels, the float16 codebooks and basis.

    python benchmarks/sh_lowrank.py [--inputs A.ply ...] [--quality 6] [--views 16] [--size 256]

Writes ``benchmarks/results/sh_lowrank.json`` (rows: input, setting, bytes, shN_bytes, psnr,
ssim, encode_seconds) after every input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from splatpack.codecs.grid import (
    AttributeCoding,
    GridCodecConfig,
    encode_grid_scene,
    grid_attribute_bytes,
    read_grid_scene,
)
from splatpack.codecs.grid.sort import sort_scene
from splatpack.compress.kmeans import vector_quantise
from splatpack.compress.pruning import contributions, prune_lowest
from splatpack.compress.sh_basis import band_degrees, cull_bands, fit_sh_basis
from splatpack.core.atomic import atomic_write_text
from splatpack.formats import load_scene
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras
from splatpack.spk.arrays import encode_array
from splatpack.spk.container import write_spk

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUTS = [ROOT / "benchmarks/inputs/lego/point_cloud.ply", ROOT / "benchmarks/inputs/fern/point_cloud.ply"]
RESULTS = ROOT / "benchmarks/results/sh_lowrank.json"


def settings(quality: int) -> dict[str, tuple[GridCodecConfig, float | None]]:
    """name → (codec settings, band-culling τ or pruned fraction or None; see the name)."""
    base = GridCodecConfig.from_quality(quality)
    out: dict[str, tuple[GridCodecConfig, float | None]] = {"grid": (base, None)}
    for rank in (4, 8, 12, 16, 24, 32):
        for bits in (4, 5, 6, 8):
            cfg = dataclasses.replace(base, sh_mode="basis", basis_rank=rank, shN=AttributeCoding(bits))
            out[f"basis-r{rank}-b{bits}"] = (cfg, None)
    for tau in (1e-4, 1e-3, 4e-3):
        out[f"cull-t{tau:g}"] = (base, tau)
        out[f"cullw-t{tau:g}"] = (base, tau)
    for fraction in (0.1, 0.2, 0.3):
        out[f"prune-{fraction:g}"] = (base, fraction)
    out["palette"] = (dataclasses.replace(base, sh_mode="palette", palette_size=8192), None)
    out["rvq"] = (dataclasses.replace(base, sh_mode="rvq", rvq_stages=2, rvq_size=256), None)
    return out


LR2VQ = [(r, d) for r in (16, 24, 32) for d in (2, 4)]


def lr2vq(shn: np.ndarray, weights: np.ndarray, grid_index: np.ndarray, rank: int, sub: int) -> tuple[np.ndarray, int]:
    """(the SH rest [N, K−1, 3] LR²VQ reconstructs, its bytes): see the module docstring."""
    basis = fit_sh_basis(shn, rank, "pca", weights)
    coefs = basis.project(shn)
    recon = np.empty_like(coefs)
    size = 2 * (basis.left.size + basis.mean.size)  # float16 basis and mean
    cells = grid_index.reshape(-1)
    for j in range(0, rank, sub):
        centroids, labels = vector_quantise(coefs[:, j : j + sub], 256, 10, seed=j)
        order = np.argsort(centroids[:, 0])  # nearby labels, nearby codewords: smoother label images
        rank_of = np.empty_like(order)
        rank_of[order] = np.arange(len(order))
        labels = rank_of[labels]
        recon[:, j : j + sub] = centroids[order][labels]
        img = np.where(cells >= 0, labels[np.maximum(cells, 0)], 0).reshape(grid_index.shape).astype(np.uint8)
        jxl = len(encode_array(img, "jxl", bits=8, effort=7))
        ans = len(encode_array(labels.astype(np.uint8)[:, None], "ans"))
        size += min(jxl, ans) + 2 * centroids.size
    return basis.reconstruct(recon), size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", nargs="+", type=Path, default=DEFAULT_INPUTS)
    ap.add_argument("--quality", type=int, default=6)
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--only", nargs="*", default=None, help="setting names to run (default: all)")
    args = ap.parse_args()
    rows: list[dict] = []
    if args.only and RESULTS.is_file():  # a partial run updates the earlier rows
        rows = [r for r in json.loads(RESULTS.read_text())["rows"] if r["setting"] not in args.only]
    for path in args.inputs:
        gs = load_scene(path)
        poses, K = orbit_cameras(gs.means, args.views, args.size, 60.0)
        reference = render_views(gs, poses, K, args.size)
        weights = contributions(gs, *orbit_cameras(gs.means, 12, 128, 60.0), 128)
        print(f"{path.parent.name}: {len(gs):,} Gaussians, SH degree {gs.sh_degree}", flush=True)
        for name, (cfg, tau) in settings(args.quality).items():
            if args.only and name not in args.only:
                continue
            src, deg = gs, None
            if name.startswith("prune"):
                src = prune_lowest(gs, weights, tau)
            elif tau is not None:
                w = weights.numpy() if name.startswith("cullw") else None
                deg = band_degrees(gs.shN.numpy(), tau, w)
                src = dataclasses.replace(gs, shN=torch.from_numpy(cull_bands(gs.shN.numpy(), deg)))
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "s.spk"
                t0 = time.perf_counter()
                sections, meta = encode_grid_scene(src, cfg)
                seconds = time.perf_counter() - t0
                write_spk(out, sections, meta, len(src))
                size, per = out.stat().st_size, grid_attribute_bytes(sections)
                decoded = read_grid_scene(out)
            p, s = mean_psnr_ssim(render_views(decoded, poses, K, args.size), reference)
            row = {
                "input": path.parent.name,
                "setting": name,
                "num_gaussians": len(src),
                "bytes": size,
                "shN_bytes": per.get("shN"),
                "psnr": round(p, 3),
                "ssim": round(s, 5),
                "encode_seconds": round(seconds, 2),
            }
            if deg is not None:
                row["mean_degree"] = round(float(np.mean(deg)), 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
        base = GridCodecConfig.from_quality(args.quality)
        grid_index, _ = sort_scene(gs, base)
        sections, meta = encode_grid_scene(gs, base, grid_index)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "s.spk"
            write_spk(out, sections, meta, len(gs))
            without_shn = out.stat().st_size - grid_attribute_bytes(sections).get("shN", 0)
            decoded = read_grid_scene(out)
        raster = grid_index.reshape(-1)
        raster = raster[raster >= 0]  # the decoded Gaussians' rows of the input
        for rank, sub in LR2VQ:
            name = f"lr2vq-r{rank}-d{sub}"
            if args.only and name not in args.only:
                continue
            t0 = time.perf_counter()
            shn, shn_bytes = lr2vq(gs.shN.numpy(), weights.numpy(), grid_index, rank, sub)
            seconds = time.perf_counter() - t0
            approx = dataclasses.replace(decoded, shN=torch.from_numpy(shn[raster]).float())
            p, s = mean_psnr_ssim(render_views(approx, poses, K, args.size), reference)
            row = {"input": path.parent.name, "setting": name, "num_gaussians": len(gs)}
            row |= {"bytes": without_shn + shn_bytes, "shN_bytes": shn_bytes, "psnr": round(p, 3), "ssim": round(s, 5)}
            rows.append(row | {"encode_seconds": round(seconds, 2)})
            print(json.dumps(rows[-1]), flush=True)
        report = {"quality": args.quality, "views": args.views, "size": args.size, "rows": rows}
        atomic_write_text(RESULTS, json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
