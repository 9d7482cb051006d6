"""Training quality on real captures with the CPU backend (figures for the scene pipeline).

* lego (Blender) at 200×200 — target: test PSNR ≥ 31 dB and SSIM ≥ 0.95 within 20 minutes;
* fern (LLFF poses, images_8, 504×378) — target: test PSNR ≥ 23.5 dB within 20 minutes;
* fern through ``splatpack process`` (pycolmap SfM on images_8, then training on that model)
  — target: all 20 images registered, PSNR within 1 dB of the run on the LLFF poses.

Each run is ``splatpack train scenes/<name>.yaml --backend cpu`` (the scene files carry the
CPU budgets: step counts and densification caps); the SfM run reuses fern's settings; results (the runs'
``metrics.json`` plus targets) go to ``benchmarks/results/train_quality.json``.

Usage:  python benchmarks/train_quality.py [--only lego fern fern-sfm] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def train(scene: str, out: Path, steps: int | None, extra: list[str] = (), reuse: bool = False) -> dict:
    """``splatpack train SCENE --backend cpu``; with ``reuse``, an existing
    run's metrics.json in ``out`` (from that same command) is read instead."""
    from splatpack.apps.cli import main

    if reuse and (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    args = ["train", scene, "--out", str(out), "--backend", "cpu", *extra]
    if steps:
        args += ["--steps", str(steps)]
    rc = main(args)
    if rc != 0:
        raise SystemExit(f"training {scene} failed ({rc})")
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=["lego", "fern", "fern-sfm"])
    ap.add_argument("--steps", type=int, default=None, help="override the scene files' step counts")
    ap.add_argument("--reuse", action="store_true", help="read finished runs' metrics.json instead of retraining")
    ap.add_argument("--runs", type=Path, default=ROOT / "outputs/bench")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/train_quality.json")
    args = ap.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the shared data at {SHARED}")
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if "lego" in args.only:
        m = train(str(ROOT / "scenes/lego.yaml"), args.runs / "lego", args.steps, reuse=args.reuse)
        results["lego"] = {
            **m,
            "targets": {"psnr": 31.0, "ssim": 0.95, "train_seconds": 1200},
            "pass": m["psnr"] >= 31.0 and m["ssim"] >= 0.95 and m["train_seconds"] <= 1200,
        }
    if "fern" in args.only:
        m = train(str(ROOT / "scenes/fern.yaml"), args.runs / "fern", args.steps, reuse=args.reuse)
        results["fern"] = {
            **m,
            "targets": {"psnr": 23.5, "train_seconds": 1200},
            "pass": m["psnr"] >= 23.5 and m["train_seconds"] <= 1200,
        }
    if "fern-sfm" in args.only:
        from splatpack.captures.sfm import run_sfm

        t = time.perf_counter()
        sfm = run_sfm(SHARED / "scenes/fern/images_8", args.runs / "fern-sfm-model")
        sfm_seconds = time.perf_counter() - t
        import yaml

        scene = yaml.safe_load((ROOT / "scenes/fern.yaml").read_text())  # same budget as the LLFF run
        scene.update(
            name="fern-sfm",
            data=str(args.runs / "fern-sfm-model"),
            format="colmap",
            downscale=1,
            config=str(ROOT / "configs/default.yaml"),
        )
        scene_file = args.runs / "fern-sfm.yaml"
        scene_file.write_text(yaml.safe_dump(scene))
        m = train(str(scene_file), args.runs / "fern-sfm", args.steps)
        ref = results.get("fern", {}).get("psnr")
        results["fern-sfm"] = {
            **m,
            "sfm": {k: v for k, v in sfm.items() if k != "sparse_dir"},
            "sfm_seconds": sfm_seconds,
            "psnr_gap_to_llff_poses": None if ref is None else ref - m["psnr"],
            "pass": sfm["registered"] == 20 and ref is not None and abs(ref - m["psnr"]) <= 1.0,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(
        json.dumps(
            {
                k: {kk: v.get(kk) for kk in ("psnr", "ssim", "lpips", "num_gaussians", "train_seconds", "pass")}
                for k, v in results.items()
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
