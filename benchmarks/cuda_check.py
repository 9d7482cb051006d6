"""CPU backend vs CUDA backend (gsplat) on a trained scene: images and gradients.

Run where a CUDA GPU and gsplat's kernels are available. For each of a few views it renders
the same Gaussians with ``backend="cpu"`` and ``backend="cuda"``, and reports

* PSNR between the two renders (target ≥ 45 dB: identical up to float rounding),
* the relative L2 error of the gradients of L = Σ w ⊙ image (fixed random w) w.r.t. means,
  quaternions, log-scales, opacity logits and SH coefficients (target < 1e-3).

The scene: ``--ply`` (a trained ``point_cloud.ply``) seen from cameras on a ring around it, or
by default a short CPU training run on the built-in synthetic scene. Writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.render import cuda_available, rasterize
from splatpack.render.camera import look_at


def trained_synthetic(steps: int) -> tuple[GaussianSet, list]:
    import tempfile

    from splatpack.captures import load_capture
    from splatpack.captures.synthetic import ensure_default_scene
    from splatpack.train import TrainConfig, Trainer

    cap = load_capture(ensure_default_scene())
    out = Path(tempfile.mkdtemp())
    tr = Trainer(cap, TrainConfig(steps=steps, init_random_points=20_000, eval_lpips=False, backend="cpu"), out)
    tr.train()
    gs = GaussianSet.from_parameters(tr.params)
    views = [(f.camtoworld, f.K, f.width, f.height) for f in cap.test]
    return gs, views


def ring_views(gs: GaussianSet, n: int = 4, size: int = 256):
    c = gs.means.median(0).values.numpy()
    r = 2.5 * np.percentile(np.linalg.norm(gs.means.numpy() - c, axis=1), 90)
    K = np.array([[0.9 * size, 0, size / 2], [0, 0.9 * size, size / 2], [0, 0, 1.0]])
    return [
        (look_at(c + r * np.array([math.cos(t), math.sin(t), 0.4]), c, np.array([0, 0, 1.0])), K, size, size)
        for t in np.linspace(0, 2 * math.pi, n, endpoint=False)
    ]


def render_with_grads(gs: GaussianSet, view, backend: str, weights: torch.Tensor):
    dev = "cuda" if backend == "cuda" else "cpu"
    params = {k: v.to(dev) for k, v in gs.to_parameters().items()}
    c2w, K, w, h = view
    img, _, _ = rasterize(
        params["means"],
        params["quats"],
        torch.exp(params["scales"]),
        torch.sigmoid(params["opacities"]),
        torch.cat([params["sh0"], params["shN"]], 1),
        torch.from_numpy(np.linalg.inv(c2w)).float().to(dev),
        torch.from_numpy(K).float().to(dev),
        w,
        h,
        sh_degree=gs.sh_degree,
        background=torch.zeros(3, device=dev),
        backend=backend,
    )
    (img * weights.to(dev)).sum().backward()
    return img.detach().cpu(), {k: v.grad.detach().cpu() for k, v in params.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ply", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cuda_check.json"))
    args = ap.parse_args()
    if not cuda_available():
        raise SystemExit("no CUDA device with gsplat kernels here")
    if args.ply:
        from splatpack.formats.ply import load_ply

        gs = load_ply(args.ply)
        views = ring_views(gs)
    else:
        gs, views = trained_synthetic(args.steps)
    rows = []
    for i, view in enumerate(views):
        weights = torch.randn(view[3], view[2], 3, generator=torch.Generator().manual_seed(i))
        img_cpu, g_cpu = render_with_grads(gs, view, "cpu", weights)
        img_gpu, g_gpu = render_with_grads(gs, view, "cuda", weights)
        mse = torch.mean((img_cpu.clamp(0, 1) - img_gpu.clamp(0, 1)) ** 2).item()
        rel = {k: ((g_cpu[k] - g_gpu[k]).norm() / g_gpu[k].norm().clamp_min(1e-20)).item() for k in g_cpu}
        rows.append({"view": i, "psnr_cpu_vs_cuda": 10 * math.log10(1 / max(mse, 1e-20)), "grad_rel_err": rel})
    result = {
        "num_gaussians": len(gs),
        "device": torch.cuda.get_device_name(0),
        "views": rows,
        "min_psnr": min(r["psnr_cpu_vs_cuda"] for r in rows),
        "max_grad_rel_err": max(max(r["grad_rel_err"].values()) for r in rows),
    }
    result["pass"] = result["min_psnr"] >= 45 and result["max_grad_rel_err"] < 1e-3
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
