"""Latent-mode coding under the generative model (issue 14, mode a; :mod:`splatpack.codecs.latent`):
rate–distortion of the shipped objects10k model's latents plus the residual at the quality
ladder's steps, against the grid codec's ladder at the same levels, on the model's held-out
objects (its model card's split) and, out of domain, on the shared scenes (plant, biker). PSNR and SSIM are of renders against the original's (orbit
views, CPU rasteriser, black background, as ``splatpack bench``). Also the latents alone (no
residual), the channels whose prediction beat the per-channel fallback, the autoencoder's
prediction error per attribute (RMSE over the channel's standard deviation: below 1 predicts
better than the channel mean), and the latents' bytes under the model's latent coder (the
prior's masked form) against packing them (deflate), with the coder's cross-entropy.

    python benchmarks/latent_coding.py [--qualities 0 2 4 6 8] [--scene-qualities 0 6] [--views 16] [--size 256]
    python benchmarks/latent_coding.py --bits-only   # only the latents' bytes, merged into the results

writes ``benchmarks/results/latent_coding.json`` and ``benchmarks/results/latent_coding.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from splatpack.codecs.grid import GridCodecConfig, write_grid_scene
from splatpack.codecs.latent import (
    LATENT_SCENE_CODEC,
    LatentCodecConfig,
    grid_latents,
    latent_grid_shape,
    latent_prediction,
    load_generative_model,
)
from splatpack.codecs.registry import read_gaussians
from splatpack.formats import load_scene
from splatpack.generative.bitmodel import coding_copy
from splatpack.generative.entropy import encode_planes
from splatpack.generative.grids import CHANNELS, object_frame, sorted_grid, to_object_frame
from splatpack.generative.model import SHIPPED_MODEL
from splatpack.metrics.image import mean_psnr_ssim
from splatpack.render.camera import orbit_cameras
from splatpack.render.gaussians import render_views
from splatpack.spk.arrays import encode_array

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "splats" / "objects10k"
SCENES = [ROOT.parent / "shared" / "splats" / "plant.splat", ROOT.parent / "shared" / "splats" / "biker.spz"]
RESULTS = ROOT / "benchmarks" / "results"
GROUPS = {"position": (0, 3), "scale": (3, 6), "rotation": (6, 10), "opacity": (10, 11), "colour": (11, 14)}


def prediction_error(gs, model) -> dict[str, float]:
    """RMSE / std of the autoencoder's prediction per attribute group (channels with std > 0)."""
    h, w = latent_grid_shape(len(gs), model.bae.config.factor)
    grid, _ = sorted_grid(to_object_frame(gs, object_frame(gs)), (h, w), 0)
    x = grid[: model.config.layout.channels].double().numpy()
    p = latent_prediction(model, x)
    out = {}
    for name, (a, b) in GROUPS.items():
        std = x[a:b].std(axis=(1, 2))
        live = std > 1e-4 * (np.abs(x[a:b]).mean(axis=(1, 2)) + 1e-3)  # constant channels (float noise) skipped
        if live.any():
            rmse = np.sqrt(((x[a:b] - p[a:b]) ** 2).mean(axis=(1, 2)))
            out[name] = round(float((rmse[live] / std[live]).mean()), 3)
    return out


def latent_bits(gs, model) -> dict:
    """Bytes of the latents of ``gs`` (the codec's grid): packed (deflate), under the latent
    coder (ANS words, with its order-0 plane fallbacks), and the coder's cross-entropy."""
    h, w = latent_grid_shape(len(gs), model.bae.config.factor)
    grid, _ = sorted_grid(to_object_frame(gs, object_frame(gs)), (h, w), 0)
    bits = grid_latents(model, grid[: model.config.layout.channels])
    out = {"bits": int(bits.size), "packed": len(encode_array(np.packbits(bits.reshape(-1)), "deflate"))}
    if model.coder is not None:
        t = time.perf_counter()
        coded = encode_planes(coding_copy(model.coder), bits)
        out |= {"coded": len(coded.words), "cross_entropy": round(coded.coded_bits / 8, 1)}
        out |= {"model_cross_entropy": round(float(coded.model_bits.sum()) / 8, 1), "static_planes": len(coded.static)}
        out["encode_s"] = round(time.perf_counter() - t, 2)
    return out


def bits_table(bits: dict) -> list[str]:
    lines = [
        "",
        "The latents' bytes (the codec's grid; packed = deflate of the bits; coded = ANS under the latent coder):",
        "",
    ]
    lines += [
        "| object | bits | packed | coded | coder's cross-entropy | coded / packed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, b in bits.items():
        if "coded" in b:
            lines.append(
                f"| {name} | {b['bits']:,} | {b['packed']:,} | {b['coded']:,} | {b['cross_entropy']:,.0f} "
                f"| {b['coded'] / b['packed']:.3f} |"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--qualities", type=int, nargs="+", default=[0, 2, 4, 6, 8])
    ap.add_argument("--scene-qualities", type=int, nargs="*", default=[0, 6], help="out of domain (plant, biker)")
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--bits-only", action="store_true", help="only the latents' bytes, merged into the results")
    args = ap.parse_args()
    model = load_generative_model(SHIPPED_MODEL)
    held_out = model.info["held_out"]
    bits = {name: latent_bits(load_scene(args.data / f"{name}.splat"), model) for name in held_out}
    print(json.dumps(bits), flush=True)
    if args.bits_only:
        report = json.loads((RESULTS / "latent_coding.json").read_text())
        report["latent_bits"] = bits
        (RESULTS / "latent_coding.json").write_text(json.dumps(report, indent=1) + "\n")
        md = (RESULTS / "latent_coding.md").read_text().split("\nThe latents' bytes")[0].rstrip("\n")
        (RESULTS / "latent_coding.md").write_text(md + "\n" + "\n".join(bits_table(bits)) + "\n")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [(args.data / f"{name}.splat", args.qualities) for name in held_out]
        inputs += [(path, args.scene_qualities) for path in SCENES if path.is_file() and args.scene_qualities]
        for source, qualities in inputs:
            name = source.name.split(".")[0]
            gs = load_scene(source)
            poses, K = orbit_cameras(gs.means, args.views, args.size, 50.0)
            reference = render_views(gs, poses, K, args.size)

            def score(path: Path, coder: str, setting: str, seconds: float, extra: dict | None = None) -> None:
                t = time.perf_counter()
                decoded = read_gaussians(path)
                dec = time.perf_counter() - t
                psnr, ssim = mean_psnr_ssim(render_views(decoded, poses, K, args.size), reference)
                row = {"object": name, "coder": coder, "setting": setting, "bytes": path.stat().st_size}
                row |= {"psnr": round(psnr, 2), "ssim": round(ssim, 4), "encode_s": round(seconds, 2)}
                rows.append(row | {"decode_s": round(dec, 2)} | (extra or {}))
                print(json.dumps(rows[-1]), flush=True)

            for q in qualities:
                path = Path(tmp) / f"{name}_grid{q}.spk"
                t = time.perf_counter()
                write_grid_scene(path, gs, GridCodecConfig.from_quality(q))
                score(path, "grid", f"q{q}", time.perf_counter() - t)
                path = Path(tmp) / f"{name}_latent{q}.spk"
                t = time.perf_counter()
                enc = LATENT_SCENE_CODEC.encode(gs, LatentCodecConfig(quality=q))
                enc.write(path)
                predicted = [CHANNELS[i] for i, c in enumerate(enc.meta["channels"][:14]) if c["predicted"]]
                score(path, "latent", f"q{q}", time.perf_counter() - t, {"predicted_channels": predicted})
            if name not in held_out:
                continue  # a scene's latents alone: over 8 Gaussians a byte, which the container refuses
            path = Path(tmp) / f"{name}_latents.spk"
            t = time.perf_counter()
            LATENT_SCENE_CODEC.encode(gs, LatentCodecConfig(residual=False)).write(path)
            score(
                path,
                "latent",
                "latents only",
                time.perf_counter() - t,
                {"prediction_error": prediction_error(gs, model)},
            )
    summary = {}
    for coder, setting in sorted({(r["coder"], r["setting"]) for r in rows}):
        sel = [r for r in rows if r["coder"] == coder and r["setting"] == setting and r["object"] in held_out]
        summary[f"{coder} {setting}"] = {
            "bytes": round(float(np.mean([r["bytes"] for r in sel]))),
            "psnr": round(float(np.mean([r["psnr"] for r in sel])), 2),
            "ssim": round(float(np.mean([r["ssim"] for r in sel])), 4),
        }
    for key, v in summary.items():  # the ladder's bytes at each latent setting's PSNR, per object
        if key.startswith("latent q"):
            ratios = []
            for obj in held_out:
                ladder = sorted((r["psnr"], r["bytes"]) for r in rows if r["object"] == obj and r["coder"] == "grid")
                mine = next(r for r in rows if r["object"] == obj and f"{r['coder']} {r['setting']}" == key)
                psnrs, sizes = zip(*ladder)
                if psnrs[0] <= mine["psnr"] <= psnrs[-1]:
                    ratios.append(mine["bytes"] / float(np.interp(mine["psnr"], psnrs, sizes)))
            v["bytes_over_ladder_at_equal_psnr"] = round(float(np.mean(ratios)), 3) if ratios else None
    report = {"model": SHIPPED_MODEL.name, "objects": held_out, "views": args.views, "size": args.size}
    report |= {"summary": summary, "rows": rows, "latent_bits": bits}
    (RESULTS / "latent_coding.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"# Latent-mode coding on the {len(held_out)} held-out objects ({', '.join(held_out)})",
        "",
        f"Means over the objects; PSNR/SSIM of {args.views} orbit renders at {args.size} px against the original's.",
        "",
        "| coder | setting | bytes | PSNR dB | SSIM | bytes / ladder's at equal PSNR |",
        "|---|---|---|---|---|---|",
    ]
    for key, v in summary.items():
        coder, setting = key.split(" ", 1)
        ratio = v.get("bytes_over_ladder_at_equal_psnr")
        ratio = "" if ratio is None else f"{ratio:.3f}"
        lines.append(f"| {coder} | {setting} | {v['bytes']:,} | {v['psnr']:.2f} | {v['ssim']:.4f} | {ratio} |")
    lines += ["", "Out of domain (scenes, not objects):", "", "| scene | coder | setting | bytes | PSNR dB | SSIM |"]
    lines += ["|---|---|---|---|---|---|"]
    for r in rows:
        if r["object"] not in held_out:
            lines.append(
                f"| {r['object']} | {r['coder']} | {r['setting']} | {r['bytes']:,} | {r['psnr']:.2f} | {r['ssim']:.4f} |"
            )
    errors = [r["prediction_error"] for r in rows if "prediction_error" in r and r["object"] in held_out]
    lines += ["", "Autoencoder prediction error, RMSE / std per attribute (mean over objects; < 1 beats the mean):", ""]
    for group in GROUPS:
        vals = [e[group] for e in errors if group in e]
        if vals:
            lines.append(f"- {group}: {np.mean(vals):.2f}")
    lines += bits_table(bits)
    (RESULTS / "latent_coding.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
