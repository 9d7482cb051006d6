"""splatpack's CUDA training step against a gsplat ``simple_trainer``-equivalent step (issue 17, item 5).

Both loops start from the same Gaussians (``--num`` random points in the capture's initial box,
``splatpack.train.views.initial_gaussians``) on the same views, and time ``--iters`` steps after
``--warmup``, with ``torch.cuda.synchronize`` around the timed span:

* **splatpack**: ``Trainer.train_step`` with the vanilla preset (``configs/default.yaml``) — the
  step ``splatpack train`` runs: render through ``splatpack.render.rasterize`` (backend
  ``cuda``), L1 + 0.2·D-SSIM, the methods' hooks, backward, Adam, densification bookkeeping.
* **gsplat**: the loop of gsplat's ``examples/simple_trainer.py`` written out with gsplat's
  public API: ``gsplat.rasterization`` (``packed=False``, SH degree 3), the same loss (splatpack's
  SSIM, since ``fused_ssim`` is not installed), ``DefaultStrategy.step_pre/post_backward``, one
  Adam per parameter and the means' exponential learning-rate decay.

Both run at step 20,000 of a 30k schedule: SH degree 3, past densification, so that the Gaussian
count stays fixed while timing. Writes ``it_per_s`` of each and their ratio to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from splatpack.captures import load_capture
from splatpack.metrics import ssim
from splatpack.train import Trainer
from splatpack.train.config import load_config, resolve_preset
from splatpack.train.views import initial_gaussians

STEP = 20_000  # past refine_stop (15k), SH degree 3


def time_loop(step_fn, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        step_fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step_fn()
    torch.cuda.synchronize()
    return iters / (time.perf_counter() - t0)


def splatpack_rate(trainer: Trainer, iters: int, warmup: int) -> float:
    trainer.step = STEP

    def step() -> None:
        trainer.train_step()
        trainer.step += 1

    return time_loop(step, iters, warmup)


def gsplat_rate(trainer: Trainer, initial: dict[str, torch.Tensor], iters: int, warmup: int) -> float:
    """simple_trainer's step from ``initial`` (the parameters before any step) on the trainer's views."""
    from gsplat import DefaultStrategy, rasterization

    views = trainer.train_views
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.clone()) for k, v in initial.items()})
    s = trainer.scene_scale
    lrs = {"means": 1.6e-4 * s, "scales": 5e-3, "quats": 1e-3, "opacities": 5e-2, "sh0": 2.5e-3, "shN": 2.5e-3 / 20}
    opts = {k: torch.optim.Adam([{"params": params[k], "lr": lr, "name": k}], eps=1e-15) for k, lr in lrs.items()}
    sched = torch.optim.lr_scheduler.ExponentialLR(opts["means"], gamma=0.01 ** (1.0 / 30_000))
    strategy = DefaultStrategy(verbose=False)
    state = strategy.initialize_state(scene_scale=s)
    bg = trainer.background.to(trainer.device)[None]
    order: list[int] = []
    step_no = [STEP]

    def step() -> None:
        if not order:
            order.extend(torch.randperm(len(views)).tolist())
        v = views[order.pop()]
        colors = torch.cat([params["sh0"], params["shN"]], 1)
        img, _, info = rasterization(
            params["means"],
            params["quats"],
            torch.exp(params["scales"]),
            torch.sigmoid(params["opacities"]),
            colors,
            v.viewmat[None],
            v.K[None],
            v.frame.width,
            v.frame.height,
            sh_degree=3,
            backgrounds=bg,
            packed=False,
        )
        img = img[0]
        loss = 0.8 * (img - v.image).abs().mean() + 0.2 * (1 - ssim(img, v.image))
        strategy.step_pre_backward(params, opts, state, step_no[0], info)
        loss.backward()
        for o in opts.values():
            o.step()
            o.zero_grad(set_to_none=True)
        sched.step()
        strategy.step_post_backward(params, opts, state, step_no[0], info)
        loss.item()  # simple_trainer reads the loss every step for its progress bar
        step_no[0] += 1

    return time_loop(step, iters, warmup)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--downscale", type=int, default=1)
    ap.add_argument("--num", type=int, default=300_000, help="Gaussians (random in the initial box)")
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_throughput.json"))
    args = ap.parse_args()
    capture = load_capture(args.capture, downscale=args.downscale)
    cfg = load_config(resolve_preset("default"))
    cfg = dataclasses.replace(cfg, backend="cuda", eval_lpips=False, init_random_points=args.num)
    trainer = Trainer(capture, cfg, Path(tempfile.mkdtemp()))
    trainer.initial = initial_gaussians(capture, cfg)
    trainer.setup()
    initial = {k: v.detach().clone() for k, v in trainer.params.items()}
    n = len(trainer.params["means"])
    w, h = trainer.train_views[0].frame.width, trainer.train_views[0].frame.height
    ours = splatpack_rate(trainer, args.iters, args.warmup)
    theirs = gsplat_rate(trainer, initial, args.iters, args.warmup)
    result = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "scene": capture.name,
        "resolution": [w, h],
        "num_gaussians": n,
        "iters": args.iters,
        "splatpack_it_per_s": round(ours, 2),
        "gsplat_simple_trainer_it_per_s": round(theirs, 2),
        "ratio_splatpack_over_gsplat": round(ours / theirs, 3),
        "sh_degree": 3,
        "note": "same Gaussians and views; splatpack's SSIM in both loops (fused_ssim not installed)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
