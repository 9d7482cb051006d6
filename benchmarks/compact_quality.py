"""Compact scenes against vanilla 3DGS on the same captures and iterations (figures for issue 3).

For lego (200×200) and fern (images_8): ``splatpack train scenes/<name>.yaml --config
configs/compact.yaml --backend cpu`` against the vanilla run of the same scene file (from
``benchmarks/train_quality.py``). Targets: the ``.spk`` at least 25× smaller than the vanilla
PLY, test PSNR within 0.5 dB, at least 2× fewer Gaussians, training time within 1.5×. Writes
``benchmarks/results/compact_quality.json`` with a per-attribute storage table (position,
opacity, scale, rotation, colour) like the paper's.

Usage:  python benchmarks/compact_quality.py [--only lego fern] [--reuse] [--simvq]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_quality import SHARED, train  # noqa: E402


def row(name: str, vanilla: dict, compact: dict, ply_bytes: int) -> dict:
    ratio = ply_bytes / compact["size_bytes"]
    drop = vanilla["psnr"] - compact["psnr"]
    fewer = vanilla["num_gaussians"] / compact["num_gaussians"]
    slower = compact["train_seconds"] / vanilla["train_seconds"]
    mb = {k: round(v / 1e6, 4) for k, v in compact["storage_bytes"].items()}
    return {
        "scene": name,
        "vanilla": {k: vanilla[k] for k in ("psnr", "ssim", "lpips", "num_gaussians", "train_seconds", "steps")}
        | {"ply_bytes": ply_bytes},
        "compact": {
            k: compact.get(k)
            for k in (
                "psnr",
                "ssim",
                "lpips",
                "num_gaussians",
                "train_seconds",
                "steps",
                "size_bytes",
                "psnr_before_postprocess",
                "mask_pruned",
                "codebook_usage",
                "codebook_kind",
            )
        },
        "storage_mb": mb,
        "size_ratio": round(ratio, 2),
        "psnr_drop_db": round(drop, 3),
        "gaussian_ratio": round(fewer, 2),
        "train_time_ratio": round(slower, 3),
        "targets": {"size_ratio": 25, "psnr_drop_db": 0.5, "gaussian_ratio": 2, "train_time_ratio": 1.5},
        "pass": {"size": ratio >= 25, "psnr": drop <= 0.5, "gaussians": fewer >= 2, "time": slower <= 1.5},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=["lego", "fern"])
    ap.add_argument("--reuse", action="store_true", help="read finished runs' metrics.json instead of retraining")
    ap.add_argument(
        "--simvq", action="store_true", help="SimVQ codebooks instead of EMA (runs in <name>-compact-simvq)"
    )
    ap.add_argument("--runs", type=Path, default=ROOT / "outputs/bench")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/compact_quality.json")
    args = ap.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the shared data at {SHARED}")
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name in args.only:
        scene = str(ROOT / f"scenes/{name}.yaml")
        vanilla = train(scene, args.runs / name, None, reuse=True)
        ply = args.runs / name / "point_cloud.ply"
        from splatpack.formats.ply import ply_size

        ply_bytes = ply.stat().st_size if ply.is_file() else ply_size(vanilla["num_gaussians"])
        extra = ["--config", str(ROOT / "configs/compact.yaml")]
        tag = f"{name}-compact"
        if args.simvq:
            cfg = args.runs / "compact-simvq.yaml"
            cfg.parent.mkdir(parents=True, exist_ok=True)
            text = (ROOT / "configs/compact.yaml").read_text().replace("kind: ema", "kind: simvq")
            cfg.write_text(text)
            extra, tag = ["--config", str(cfg)], f"{name}-compact-simvq"
        compact = train(scene, args.runs / tag, None, extra, reuse=args.reuse)
        results[tag] = row(name, vanilla, compact, ply_bytes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for tag, r in results.items():
        c, v = r["compact"], r["vanilla"]
        print(
            f"{tag}: {c['size_bytes']:,} B vs PLY {v['ply_bytes']:,} B ({r['size_ratio']}×), "
            f"PSNR {c['psnr']:.2f} vs {v['psnr']:.2f} (−{r['psnr_drop_db']:.2f} dB), "
            f"{c['num_gaussians']:,} vs {v['num_gaussians']:,} Gaussians ({r['gaussian_ratio']}×), "
            f"time ×{r['train_time_ratio']}; storage MB {r['storage_mb']}; pass {r['pass']}"
        )


if __name__ == "__main__":
    main()
