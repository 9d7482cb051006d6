"""SH-degree-3 splats for the compression benchmark: the vanilla runs that ``splatpack train``
makes of the shared lego and fern captures (the shipped scene files' CPU budgets unless
``--steps``), written to ``benchmarks/inputs/<scene>/point_cloud.ply`` (ignored by git).

Every splat under ``../shared/splats`` is SH degree 0, while most splats users have are INRIA
PLYs with SH degree 3 (45 of 59 floats per Gaussian are the SH rest); this script makes such
inputs from data the project ships with. A run already present is kept (``--force`` redoes it);
an interrupted run resumes from its checkpoint.

    python benchmarks/sh3_inputs.py [--scenes lego fern] [--steps N] [--threads N]
    splatpack bench --inputs benchmarks/inputs/lego/point_cloud.ply benchmarks/inputs/fern/point_cloud.ply
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ROOT / "benchmarks" / "inputs"
SCENES = {"lego": ROOT / "scenes" / "lego.yaml", "fern": ROOT / "scenes" / "fern.yaml"}


def train(scene: str, steps: int | None, threads: int | None, force: bool) -> Path:
    out = INPUTS / scene
    ply = out / "point_cloud.ply"
    if ply.is_file() and not force:
        print(f"{scene}: kept {ply}", flush=True)
        return ply
    if force and out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "splatpack", "train", str(SCENES[scene]), "--out", str(out)]
    cmd += ["--steps", str(steps)] if steps else []
    cmd += ["--threads", str(threads)] if threads else []
    cmd += ["--resume"] if (out / "checkpoint.pt").is_file() else []
    subprocess.run(cmd, check=True)
    return ply


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", nargs="+", choices=sorted(SCENES), default=sorted(SCENES))
    ap.add_argument("--steps", type=int, default=None, help="override the scene file's step budget")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--force", action="store_true", help="train again even when a run is present")
    args = ap.parse_args()
    for scene in args.scenes:
        ply = train(scene, args.steps, args.threads, args.force)
        metrics = json.loads((ply.parent / "metrics.json").read_text())
        keys = ("psnr", "num_gaussians", "steps", "train_seconds")
        print(f"{scene}: {ply}", {k: metrics.get(k) for k in keys}, flush=True)


if __name__ == "__main__":
    main()
