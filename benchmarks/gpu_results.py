"""Collect what ``benchmarks/gpu_suite.sh`` brought back from a GPU into one results file and table.

The GPU machine has no LPIPS weights, so each lego run's test renders come back as PNGs and LPIPS
(and PSNR/SSIM of the 8-bit renders, as a check on the figures the run reported) are computed
here against the capture's test images, composited on its background as training does.

    python benchmarks/gpu_results.py SUITE_OUT [--cuda-check FILE] [--run NAME=metrics.json] [--capture DIR]

Writes ``benchmarks/results/gpu_suite.json`` and prints a markdown table with the published lego
figures beside ours.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from splatpack.captures import load_capture
from splatpack.captures.images import load_image
from splatpack.formats.ply import ply_size
from splatpack.metrics import LPIPSUnavailable, lpips, psnr, ssim

# Published lego figures (NeRF-synthetic, 800×800, 30k steps), as issue 17 quotes them.
PAPERS = [
    {"method": "3DGS (Kerbl et al. 2023)", "psnr": 35.8, "bytes": None},
    {"method": "SOG (Morgenstern et al. 2024)", "psnr": 34.96, "bytes": 4.52e6},
    {"method": "HAC (Chen et al. 2024)", "psnr": 35.67, "bytes": 2.00e6},
]


def render_metrics(renders: Path, capture_dir: Path) -> dict:
    """LPIPS, PSNR and SSIM of ``NNNN_<name>.png`` renders against the capture's test views."""
    cap = load_capture(capture_dir)
    bg = np.ones(3) if cap.white_background else np.zeros(3)
    by_name = {Path(f.name).stem: f for f in cap.test}
    rows = []
    for png in sorted(renders.glob("*.png")):
        frame = by_name[png.stem.split("_", 1)[1]]
        gt = load_image(frame)
        if gt.shape[-1] == 4:
            gt = gt[..., :3] * gt[..., 3:] + bg * (1 - gt[..., 3:])
        img = torch.from_numpy(iio.imread(png)[..., :3].astype(np.float32) / 255)
        ref = torch.from_numpy(gt.astype(np.float32))
        row = {"view": png.stem, "psnr": float(psnr(img, ref)), "ssim": float(ssim(img, ref))}
        try:
            row["lpips"] = lpips(img, ref)
        except LPIPSUnavailable:
            row["lpips"] = None
        rows.append(row)
    mean = {k: float(np.mean([r[k] for r in rows])) if rows[0][k] is not None else None for k in rows[0] if k != "view"}
    return {"num_views": len(rows), **{f"{k}_8bit": v for k, v in mean.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite_out", type=Path, help="the folder the suite wrote (results.tar, NAME.renders.tar)")
    ap.add_argument("--cuda-check", type=Path, default=None, help="a later cuda_check.json to use instead")
    ap.add_argument("--run", action="append", default=[], metavar="NAME=METRICS_JSON", help="another run's metrics")
    ap.add_argument("--capture", type=Path, default=Path("../shared/scenes/lego"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_suite.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        res = Path(tmp) / "results"
        res.mkdir()
        with tarfile.open(args.suite_out / "results.tar") as tar:
            tar.extractall(res, filter="data")
        check_path = args.cuda_check or res / "cuda_check.json"
        out = {
            "environment": (res / "environment.txt").read_text().strip().splitlines(),
            "gsplat_build": [ln for ln in (res / "gsplat_build.log").read_text().splitlines() if ln.startswith("real")],
            "cuda_check": json.loads(check_path.read_text()) if check_path.is_file() else None,
            "throughput": json.loads((res / "gpu_throughput.json").read_text()),
            "runs": {},
            "papers_lego": PAPERS,
        }
        for m in sorted(res.glob("*.metrics.json")):
            name = m.name.removesuffix(".metrics.json")
            run = json.loads(m.read_text())
            if "size_bytes" not in run:  # the vanilla preset writes a PLY with SH degree 3
                run["size_bytes"] = ply_size(run["num_gaussians"], 3)
            tar_path = args.suite_out / f"{name}.renders.tar"
            if tar_path.is_file():
                d = Path(tmp) / name
                with tarfile.open(tar_path) as tar:
                    tar.extractall(d, filter="data")
                run.update(render_metrics(d / "test_renders", args.capture))
                run["lpips"] = run.get("lpips_8bit")
            out["runs"][name] = run
        for spec in args.run:
            name, _, path = spec.partition("=")
            out["runs"][name] = json.loads(Path(path).read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print("| run | steps | PSNR | SSIM | LPIPS | Gaussians | bytes | train s | it/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in out["runs"].items():
        lp = f"{r['lpips']:.4f}" if r.get("lpips") is not None else "–"
        print(
            f"| {name} | {r['steps']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {lp} | {r['num_gaussians']:,} | "
            f"{r['size_bytes'] / 1e6:.2f} MB | {r['train_seconds']:.0f} | {r['it_per_s']:.0f} |"
        )
    for p in PAPERS:
        size = f"{p['bytes'] / 1e6:.2f} MB" if p["bytes"] else "–"
        print(f"| {p['method']} (published) | 30000 | {p['psnr']:.2f} | | | | {size} | | |")


if __name__ == "__main__":
    main()
