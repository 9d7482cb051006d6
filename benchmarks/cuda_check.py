"""CPU backend vs CUDA backend (gsplat) on trained scenes: images and gradients (issue 17, item 3).

For each scene and view it renders the same Gaussians with ``backend="cpu"`` and ``backend="cuda"``
and reports

* the PSNR between the two renders (target ≥ 45 dB: identical up to float rounding),
* the relative L2 error ‖g_cpu − g_cuda‖ / ‖g_cuda‖ of the gradients of L = Σ w ⊙ image (fixed
  random w) w.r.t. means, quaternions, log-scales, opacity logits and SH coefficients
  (target < 1e-3; with ``--floor``, < 2× the float32 floor where that is higher: see
  :func:`cpu_reference`).

Scenes: any file ``load_scene`` reads (``--scene``, repeatable), seen from cameras on a ring around
it. ``benchmarks/gpu_suite.sh`` passes the built-in synthetic scene trained on the CPU (a PLY with
SH degree 3) and a real capture (``plant.splat``).

The two halves can run apart (``--stage cpu`` then ``--stage cuda``, through ``--reference``) so
the CPU kernels compile while gsplat's CUDA kernels build. Writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from splatpack.core import GaussianSet
from splatpack.formats import load_scene
from splatpack.render import cuda_available, rasterize
from splatpack.render.camera import look_at

GRAD_KEYS = ("means", "quats", "scales", "opacities", "sh0", "shN")


def ring_views(gs: GaussianSet, n: int, size: int) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """``n`` cameras on a ring at 2.5× the 90th-percentile radius, looking at the median."""
    c = gs.means.median(0).values.numpy().astype(np.float64)
    r = 2.5 * np.percentile(np.linalg.norm(gs.means.numpy() - c, axis=1), 90)
    K = np.array([[0.9 * size, 0, size / 2], [0, 0.9 * size, size / 2], [0, 0, 1.0]])
    return [
        (look_at(c + r * np.array([math.cos(t), math.sin(t), 0.4]), c, np.array([0, 0, 1.0])), K, size, size)
        for t in np.linspace(0, 2 * math.pi, n, endpoint=False)
    ]


def render_with_grads(
    gs: GaussianSet, view, backend: str, weights: torch.Tensor, dtype=torch.float32, cpu_impl: str = "kernel"
):
    """Image [H, W, 3] and the gradients of Σ weights ⊙ image, on the CPU."""
    dev = "cuda" if backend == "cuda" else "cpu"
    params = {k: v.detach().to(dev, dtype).requires_grad_(True) for k, v in gs.to_parameters().items()}
    c2w, K, w, h = view
    img, _, _ = rasterize(
        params["means"],
        params["quats"],
        torch.exp(params["scales"]),
        torch.sigmoid(params["opacities"]),
        torch.cat([params["sh0"], params["shN"]], 1),
        torch.from_numpy(np.linalg.inv(c2w)).to(dev, dtype),
        torch.from_numpy(K).to(dev, dtype),
        w,
        h,
        sh_degree=gs.sh_degree,
        background=torch.zeros(3, device=dev, dtype=dtype),
        backend=backend,
        cpu_impl=cpu_impl,
    )
    (img * weights.to(dev, dtype)).sum().backward()
    # a parameter the render does not use (shN at SH degree 0) has no gradient: zero
    grads = {k: params[k].grad if params[k].grad is not None else torch.zeros_like(params[k]) for k in GRAD_KEYS}
    return img.detach().cpu(), {k: g.detach().cpu() for k, g in grads.items()}


def relative_errors(grads: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> dict[str, float]:
    """‖g − g_ref‖ / ‖g_ref‖ per parameter (those with a non-empty gradient)."""
    return {
        k: float((grads[k].double() - ref[k].double()).norm() / ref[k].double().norm().clamp_min(1e-20))
        for k in GRAD_KEYS
        if ref[k].numel()
    }


def cpu_reference(scenes: list[Path], n_views: int, size: int, floor: bool = False) -> dict:
    """The CPU half: per scene and view, the weights, the image and the gradients; with ``floor``
    also the float32 floor — the gradient error of the float32 kernels against the same render in
    float64 (the pure-torch tiled compositor), i.e. what float32 rounding alone moves (a Gaussian
    whose α sits at the 1/255 cut, or a pixel at the T ≤ 1e-4 stop, flips with the last bit)."""
    out = {}
    for path in scenes:
        gs = load_scene(path)
        rows = []
        for i, view in enumerate(ring_views(gs, n_views, size)):
            weights = torch.randn(view[3], view[2], 3, generator=torch.Generator().manual_seed(i))
            t0 = time.perf_counter()
            img, grads = render_with_grads(gs, view, "cpu", weights)
            row = {"weights": weights, "image": img, "grads": grads, "seconds": time.perf_counter() - t0}
            if floor:
                _, exact = render_with_grads(gs, view, "cpu", weights, torch.float64, "torch_tiled")
                row["float32_floor"] = max(relative_errors(grads, exact).values())
            rows.append(row)
        out[str(path)] = rows
    return out


def compare(scenes: list[Path], reference: dict, n_views: int, size: int) -> dict:
    """The CUDA half: render each view with gsplat and compare with the CPU reference."""
    results = []
    for path in scenes:
        gs = load_scene(path)
        rows = []
        for i, view in enumerate(ring_views(gs, n_views, size)):
            ref = reference[str(path)][i]
            img, grads = render_with_grads(gs, view, "cuda", ref["weights"])
            mse = torch.mean((ref["image"].clamp(0, 1) - img.clamp(0, 1)) ** 2).item()
            rel = relative_errors(ref["grads"], grads)
            row = {"view": i, "psnr_cpu_vs_cuda": 10 * math.log10(1 / max(mse, 1e-20)), "grad_rel_err": rel}
            if "float32_floor" in ref:
                row["float32_floor"] = ref["float32_floor"]
            rows.append(row)
        r = {
            "scene": path.name,
            "num_gaussians": len(gs),
            "sh_degree": gs.sh_degree,
            "size": size,
            "views": rows,
            "min_psnr": min(v["psnr_cpu_vs_cuda"] for v in rows),
            "max_grad_rel_err": max(max(v["grad_rel_err"].values()) for v in rows),
        }
        # the gradient target: 1e-3, or twice the float32 floor where rounding alone moves more
        r["pass"] = r["min_psnr"] >= 45 and all(
            max(v["grad_rel_err"].values()) < max(1e-3, 2 * v.get("float32_floor", 0.0)) for v in rows
        )
        results.append(r)
    return {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "scenes": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, action="append", required=True, help="a splat file (repeatable)")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--stage", choices=["cpu", "cuda", "both"], default="both")
    ap.add_argument("--floor", action="store_true", help="also measure the float32 floor (slow: float64 torch)")
    ap.add_argument("--reference", type=Path, default=None, help="the CPU half's tensors (--stage cpu/cuda)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cuda_check.json"))
    args = ap.parse_args()
    if args.stage != "both" and args.reference is None:
        ap.error("--stage cpu/cuda needs --reference")
    if args.stage in ("cpu", "both"):
        reference = cpu_reference(args.scene, args.views, args.size, args.floor)
        if args.floor:
            floors = {s: [row["float32_floor"] for row in rows] for s, rows in reference.items()}
            print(json.dumps({"float32_floor": floors}, indent=2))
        if args.stage == "cpu":
            torch.save(reference, args.reference)
            print(f"CPU reference: {len(args.scene)} scene(s) × {args.views} views → {args.reference}")
            return
    else:
        reference = torch.load(args.reference, weights_only=True)
    if not cuda_available():
        raise SystemExit("no CUDA device with gsplat kernels here")
    result = compare(args.scene, reference, args.views, args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
