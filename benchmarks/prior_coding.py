"""Learned lossless coding of the grid codec's attribute images (issue 14, mode b): bytes of the
same quantised values (hence identical renders) under (i) a shipped coding model (the value
model ``values-v1`` by default, or the bit-plane model ``bitplanes-v1``), (ii) the
grid codec's own coder (lossless JPEG XL, and order-0 ANS, the smaller per section), (iii) raw
bits; the model stream's cross-entropy against its coded bytes; seconds. In domain: the 6
held-out objects of objects10k; out of domain: plant.splat and biker.spz.

    nice -n 5 .venv/bin/python benchmarks/prior_coding.py [--model PATH] [--only NAME ...]

writes ``benchmarks/results/prior_coding_<model>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from splatpack.codecs.grid import encode_grid_scene
from splatpack.codecs.grid.layout import ImageLayout
from splatpack.codecs.prior.bitplanes import decode_bitplanes, encode_bitplanes
from splatpack.codecs.prior.modelfile import load_coding_model, shipped_model_path
from splatpack.codecs.prior.planes import grid_images
from splatpack.codecs.prior.training import grid_config
from splatpack.codecs.prior.values import decode_values_mode, encode_values_mode
from splatpack.formats import load_scene
from splatpack.generative.grids import held_out_split
from splatpack.spk.arrays import decode_array

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "splats"
RESULTS = ROOT / "benchmarks" / "results"


def measure(path: Path, loaded) -> dict:
    gs = load_scene(path)
    t = time.time()
    sections, meta = encode_grid_scene(gs, grid_config())
    grid_seconds = time.time() - t
    images = grid_images(sections, meta, loaded.layout)
    if images is None:
        raise SystemExit(f"{path}: its grid coding does not match the model's layout")
    h, w = meta["grid"]["height"], meta["grid"]["width"]
    stored = {ch.section: ch.stored_bits for ch in loaded.layout}
    per_section = {}
    for name, img in images.items():
        jxl = len(next(s.payload for s in sections if s.name == name))
        layout = ImageLayout("ans", stored[name])
        ans = len(layout.encode(img.astype(layout.dtype), 0))
        per_section[name] = {"jxl": jxl, "ans": ans, "raw": h * w * img.shape[2] * stored[name] // 8}
    best = sum(min(v["jxl"], v["ans"]) for v in per_section.values())
    jxl_total = sum(v["jxl"] for v in per_section.values())
    raw = sum(v["raw"] for v in per_section.values())
    if loaded.mode == "bitplanes":
        out, meta, entry, stats = encode_bitplanes(sections, meta, loaded)
        static_table = len(json.dumps(entry["static"]))
        static_first = stats.model_only_static_bytes  # the first pass's order-0 table, as the meta stores it
        decode = decode_bitplanes
    else:
        out, meta, entry, stats = encode_values_mode(sections, meta, loaded)
        static_table = static_first = 0
        decode = decode_values_mode
    model_total = stats.stream_bytes + stats.fallback_bytes + static_table
    by_name = {s.name: s for s in out}
    t = time.time()
    decoded = decode(by_name.__getitem__, meta, entry, loaded)
    decode_seconds = time.time() - t
    for name, sec in decoded.items():
        back = decode_array(sec.payload, "ans").reshape(images[name].shape)
        if not np.array_equal(back, images[name]):
            raise SystemExit(f"{path}: {name} does not decode to the grid codec's values")
    return {
        "gaussians": len(gs),
        "grid": [h, w],
        "sections": per_section,
        "bytes_model": model_total,
        "bytes_grid_codec_best": best,
        "bytes_grid_codec_jxl": jxl_total,
        "bytes_raw": raw,
        "saving_vs_best": round(1 - model_total / best, 4) + 0.0,
        "model_only_bytes": stats.model_only_bytes + static_first,
        "model_only_stream_bytes": stats.model_only_bytes,
        "model_only_cross_entropy_bytes": round(stats.model_only_cross_entropy_bits / 8, 1),
        "model_only_stream_over_cross_entropy": round(
            stats.model_only_bytes / max(stats.model_only_cross_entropy_bits / 8, 1e-9) - 1, 5
        ),
        "model_only_section_bytes": {u: round(b / 8) for u, b in stats.model_only_section_bits.items()},
        "model_stream_bytes": stats.stream_bytes,
        "cross_entropy_bytes": round(stats.cross_entropy_bits / 8, 1),
        "stream_over_cross_entropy": (
            round(stats.stream_bytes / (stats.cross_entropy_bits / 8) - 1, 5) if stats.cross_entropy_bits > 64 else None
        ),
        "fallback_sections": stats.fallback,
        "fallback_bytes": stats.fallback_bytes,
        "static_table_bytes": static_table,
        "static_planes": getattr(stats, "static_planes", 0),
        "encode_seconds": round(stats.seconds, 1),
        "encode_passes": stats.passes,
        "decode_seconds": round(decode_seconds, 1),
        "grid_codec_encode_seconds": round(grid_seconds, 1),
        "identical_values": True,
    }


def model_only_table(results: dict) -> str:
    """Every attribute grid under the model (no section fallback) against the grid codec's own coding."""
    names = ["grid.means", "grid.sh0", "grid.scales", "grid.quats", "grid.opacities"]
    rows = [
        "| scene | model alone | its cross-entropy | stream / cross-entropy − 1 | "
        + " | ".join(f"{n.split('.')[1]}: model / grid codec" for n in names)
        + " |",
        "|---|---:|---:|---:|" + "---:|" * len(names),
    ]
    for name, r in results.items():
        cells = [
            f"{r['model_only_section_bytes'][n]:,} / {min(r['sections'][n]['jxl'], r['sections'][n]['ans']):,}"
            for n in names
        ]
        rows.append(
            f"| {name} | {r['model_only_bytes']:,} | {r['model_only_cross_entropy_bytes']:,.0f} "
            f"| {100 * r['model_only_stream_over_cross_entropy']:.2f} % | " + " | ".join(cells) + " |"
        )
    return "\n".join(rows) + "\n"


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.2f} %"


def table(results: dict) -> str:
    rows = [
        "| scene | model (i) | grid codec best (ii) | JPEG XL only | raw (iii) | (i) vs (ii) | stream / cross-entropy − 1 "
        "| fallback sections | encode s | decode s |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['bytes_model']:,} | {r['bytes_grid_codec_best']:,} | {r['bytes_grid_codec_jxl']:,} "
            f"| {r['bytes_raw']:,} | {-100 * r['saving_vs_best'] + 0.0:+.1f} % | {_pct(r['stream_over_cross_entropy'])} "
            f"| {', '.join(s.split('.')[1] for s in r['fallback_sections']) or '—'} "
            f"| {r['encode_seconds']} | {r['decode_seconds']} |"
        )
    return "\n".join(rows) + "\n"


def write_markdown(path: Path, doc: dict) -> str:
    results, m = doc["results"], doc["model"]
    md = (
        f"Model `{m['name']}` (sha256 {m['sha256'][:12]}…), torch {doc['torch']}, {doc['threads']} thread(s); "
        "bytes of the attribute grids at identical decoded values (`benchmarks/prior_coding.py`).\n\n"
        "With per-section fallback (what `compress --prior` writes):\n\n"
        + table(results)
        + "\nThe model alone (every section under the model; bytes per section, model / grid codec's best):\n\n"
        + model_only_table(results)
        + "\n"
        + "".join(f"- {k}: {v}\n" for k, v in doc["summary"].items())
    )
    path.write_text(md)
    return md


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=shipped_model_path())
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, help="default: benchmarks/results/prior_coding_<model>.json")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md table from the .json")
    args = ap.parse_args()
    args.out = args.out or RESULTS / f"prior_coding_{args.model.stem}.json"
    if args.render:
        doc = json.loads(args.out.read_text())
        write_markdown(args.out.with_suffix(".md"), doc)
        return
    torch.set_num_threads(args.threads)
    loaded = load_coding_model(args.model)
    names = sorted(p.stem for p in (SHARED / "objects10k").glob("*.splat"))
    _, held_out = held_out_split(names)
    scenes = {n: SHARED / "objects10k" / f"{n}.splat" for n in held_out}
    scenes |= {"plant": SHARED / "plant.splat", "biker": SHARED / "biker.spz"}
    results = {}
    for name, path in scenes.items():
        if args.only and name not in args.only:
            continue
        results[name] = measure(path, loaded)
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "sections"}), flush=True)
    in_domain = [r for n, r in results.items() if n in held_out]
    summary = {}
    if in_domain:
        summary["in_domain_total_saving_vs_best"] = round(
            1 - sum(r["bytes_model"] for r in in_domain) / sum(r["bytes_grid_codec_best"] for r in in_domain), 4
        )
        summary["in_domain_model_alone_saving_vs_best"] = round(
            1 - sum(r["model_only_bytes"] for r in in_domain) / sum(r["bytes_grid_codec_best"] for r in in_domain), 4
        )
    doc = {
        "model": {"name": loaded.name, "sha256": loaded.sha256, "version": loaded.version, "card": loaded.card},
        "held_out": held_out,
        "threads": args.threads,
        "machine": platform.machine(),
        "torch": torch.__version__,
        "summary": summary,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(write_markdown(args.out.with_suffix(".md"), doc))


if __name__ == "__main__":
    main()
