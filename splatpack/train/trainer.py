"""The 3DGS training loop (Kerbl et al. 2023) over a :class:`~splatpack.captures.Capture`.

Per step: one random training view is rendered with :func:`splatpack.render.rasterize`,
the loss is L = (1 − λ)·L1 + λ·(1 − SSIM) with λ = 0.2 (eq. 7), Adam updates every parameter
group with its own learning rate (positions decay exponentially), the SH degree grows by one
every ``sh_degree_interval`` steps, and the densifier clones, splits, prunes and resets
opacities. Checkpoints are written atomically every ``checkpoint_every`` steps and
``resume=True`` continues from the newest one bit-for-bit (RNG states included).

Outputs in ``out_dir``: ``point_cloud.ply`` (INRIA layout), ``metrics.json`` and the test
renders in ``test_renders/``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatpack.captures import Capture, Frame, load_image
from splatpack.errors import SplatpackError
from splatpack.io import atomic_write, atomic_write_text, save_ply
from splatpack.metrics import LPIPSUnavailable, psnr, ssim
from splatpack.model import GaussianSet
from splatpack.render import rasterize, resolve_backend
from splatpack.train.config import TrainConfig, config_to_dict
from splatpack.train.strategy import make_densifier

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class View:
    """A frame with its image on the training device."""

    frame: Frame
    image: torch.Tensor  # [H, W, 3] composited on the capture's background
    alpha: torch.Tensor | None  # [H, W] when the source had alpha
    viewmat: torch.Tensor  # [4, 4]
    K: torch.Tensor  # [3, 3]


def photometric_loss(render: torch.Tensor, target: torch.Tensor, ssim_lambda: float) -> torch.Tensor:
    """(1 − λ)·|render − target|₁ + λ·(1 − SSIM(render, target)) (3DGS eq. 7)."""
    l1 = (render - target).abs().mean()
    if ssim_lambda == 0:
        return l1
    return (1 - ssim_lambda) * l1 + ssim_lambda * (1 - ssim(render, target))


def load_views(frames: list[Frame], background: torch.Tensor, device: str) -> list[View]:
    views = []
    for fr in frames:
        img = torch.from_numpy(load_image(fr))
        alpha = None
        if img.shape[-1] == 4:
            alpha = img[..., 3]
            img = img[..., :3] * alpha[..., None] + background * (1 - alpha[..., None])
        views.append(
            View(
                frame=fr,
                image=img.contiguous().to(device),
                alpha=None if alpha is None else alpha.to(device),
                viewmat=torch.from_numpy(fr.viewmat()).float().to(device),
                K=torch.from_numpy(fr.K).float().to(device),
            )
        )
    return views


def initial_gaussians(capture: Capture, cfg: TrainConfig) -> GaussianSet:
    """From the capture's SfM points, or random in the scene bounds when there are none."""
    if capture.points is not None and len(capture.points) >= 4:
        return GaussianSet.from_points(
            capture.points, capture.point_colors, cfg.sh_degree, cfg.init_opacity, cfg.init_scale, cfg.seed
        )
    if capture.format in ("blender", "synthetic"):  # objects around the origin (3DGS: ±1.3)
        lo, hi = np.full(3, -cfg.init_extent), np.full(3, cfg.init_extent)
    else:
        c = capture.camera_centers().mean(0)
        r = capture.scene_scale() * cfg.init_extent / 1.1
        lo, hi = c - r, c + r
    return GaussianSet.random_in_box(
        cfg.init_random_points, lo, hi, cfg.sh_degree, cfg.seed, init_opacity=cfg.init_opacity, init_scale=cfg.init_scale
    )


class Trainer:
    def __init__(self, capture: Capture, cfg: TrainConfig, out_dir: str | Path, console=None):
        from rich.console import Console

        self.capture = capture
        self.cfg = cfg.scaled_schedule()
        self.out_dir = Path(out_dir)
        self.console = console or Console(stderr=True)
        self.backend = resolve_backend(cfg.backend)
        self.device = "cuda" if self.backend == "cuda" else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
            if cfg.threads:
                from splatpack.render.cpu_kernels import set_num_threads

                set_num_threads(cfg.threads)
        self.background = torch.ones(3) if capture.white_background else torch.zeros(3)
        self.scene_scale = capture.scene_scale()
        self.step = 0
        self.train_seconds = 0.0

    # ---- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.train_views = load_views(self.capture.train, self.background, self.device)
        self.test_views = load_views(self.capture.test, self.background, self.device)
        if not self.train_views:
            raise SplatpackError("the capture has no training images", self.capture.root)
        self.params = initial_gaussians(self.capture, cfg).to(self.device).to_parameters()
        self._make_optimizers()
        self.densifier = make_densifier(cfg.densify)
        self.densifier.check_sanity(self.params, self.optimizers)
        self.strategy_state = self.densifier.initialize_state(scene_scale=self.scene_scale)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.order: list[int] = []

    def _make_optimizers(self) -> None:
        lr = self.cfg.lr
        rates = {
            "means": lr.means * self.scene_scale,
            "quats": lr.quats,
            "scales": lr.scales,
            "opacities": lr.opacities,
            "sh0": lr.sh0,
            "shN": lr.shN,
        }
        fused = {"fused": True} if self.device == "cpu" else {}
        self.optimizers = {
            k: torch.optim.Adam([{"params": self.params[k], "lr": rates[k], "name": k}], eps=1e-15, **fused)
            for k in rates
        }
        gamma = (lr.means_final / lr.means) ** (1.0 / max(1, self.cfg.steps))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizers["means"], gamma=gamma)

    # ---- checkpoints -----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def save_checkpoint(self) -> None:
        state = {
            "step": self.step,
            "train_seconds": self.train_seconds,
            "params": {k: v.detach().cpu() for k, v in self.params.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scheduler": self.scheduler.state_dict(),
            "strategy_state": {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in self.strategy_state.items()},
            "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "order": self.order,
            "config": config_to_dict(self.cfg),
        }
        with atomic_write(self.checkpoint_path, "wb") as f:
            torch.save(state, f)

    def load_checkpoint(self) -> bool:
        path = self.checkpoint_path
        if not path.is_file():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
            self.params = torch.nn.ParameterDict(
                {k: torch.nn.Parameter(v.to(self.device)) for k, v in state["params"].items()}
            )
            self._make_optimizers()
            for k, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
            self.scheduler.load_state_dict(state["scheduler"])
        except Exception as e:
            raise SplatpackError(f"cannot resume from checkpoint: {type(e).__name__}: {e}", path) from None
        self.strategy_state = {
            k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in state["strategy_state"].items()
        }
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.order = list(state["order"])
        self.step = int(state["step"])
        self.train_seconds = float(state["train_seconds"])
        return True

    # ---- rendering -------------------------------------------------------------------------------
    def current_sh_degree(self) -> int:
        return min(self.step // self.cfg.sh_degree_interval, self.cfg.sh_degree)

    def render(self, view: View, sh_degree: int | None = None, background: torch.Tensor | None = None):
        p = self.params
        colors = torch.cat([p["sh0"], p["shN"]], dim=1)
        return rasterize(
            p["means"], p["quats"], torch.exp(p["scales"]), torch.sigmoid(p["opacities"]), colors,
            view.viewmat, view.K, view.frame.width, view.frame.height,
            sh_degree=self.current_sh_degree() if sh_degree is None else sh_degree,
            background=(self.background if background is None else background).to(self.device),
            backend=self.backend, antialiased=self.cfg.antialiased,
        )  # fmt: skip

    def _next_view(self) -> View:
        if not self.order:
            self.order = torch.randperm(len(self.train_views), generator=self.rng).tolist()
        return self.train_views[self.order.pop()]

    # ---- training ----------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        view = self._next_view()
        target, bg = view.image, None
        if cfg.random_background and view.alpha is not None:
            bg = torch.rand(3, generator=self.rng).to(self.device)
            target = view.image + (bg - self.background.to(self.device)) * (1 - view.alpha[..., None])
        image, _alpha, info = self.render(view, background=bg)
        loss = photometric_loss(image, target, cfg.ssim_lambda)
        self.densifier.step_pre_backward(self.params, self.optimizers, self.strategy_state, self.step, info)
        loss.backward()
        for opt in self.optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.densifier.step_post_backward(self.params, self.optimizers, self.strategy_state, self.step, info)
        with torch.no_grad():
            mse = torch.mean((image.detach() - target) ** 2).item()
        return {"loss": loss.item(), "psnr": -10 * math.log10(max(mse, 1e-10))}

    def train(self, resume: bool = False, stop_at: int | None = None) -> dict[str, Any] | None:
        """Train to ``cfg.steps`` (or pause at ``stop_at``: checkpoint written, returns None)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.setup()
        if resume and self.load_checkpoint():
            self.console.print(f"resumed from {self.checkpoint_path} at step {self.step}")
        cfg = self.cfg
        columns = [
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), TimeRemainingColumn(),
        ]  # fmt: skip
        ema_psnr, ema_loss, t_last, s_last, rate = None, None, time.perf_counter(), self.step, 0.0
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task("train", total=cfg.steps, completed=self.step, stats="")
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                stats = self.train_step()
                self.step += 1
                self.train_seconds += time.perf_counter() - t0
                ema_psnr = stats["psnr"] if ema_psnr is None else 0.9 * ema_psnr + 0.1 * stats["psnr"]
                ema_loss = stats["loss"] if ema_loss is None else 0.9 * ema_loss + 0.1 * stats["loss"]
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    now = time.perf_counter()
                    rate = (self.step - s_last) / max(now - t_last, 1e-9)
                    t_last, s_last = now, self.step
                    line = f"loss {ema_loss:.4f} psnr {ema_psnr:5.2f} N {len(self.params['means']):,} {rate:5.1f} it/s"
                    progress.update(task, completed=self.step, stats=line)
                    if not self.console.is_terminal and self.step % (10 * cfg.log_every) == 0:
                        self.console.print(f"step {self.step}/{cfg.steps} {line}")  # logs and CI
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
                    self.save_checkpoint()
                if stop_at is not None and self.step >= stop_at:
                    self.save_checkpoint()
                    return None
        self.save_checkpoint()
        return self.finish()

    # ---- evaluation and export -----------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, write_renders: bool = True) -> dict[str, Any]:
        views = self.test_views or self.train_views[:: max(1, len(self.train_views) // 8)]
        lp = None
        if self.cfg.eval_lpips:
            try:
                from splatpack.metrics import LPIPS

                lp = LPIPS().to(self.device)
            except LPIPSUnavailable as e:
                self.console.print(f"[yellow]warning: LPIPS skipped: {e}")
        out = self.out_dir / "test_renders"
        ps, ss, ls = [], [], []
        for i, v in enumerate(views):
            img, _, _ = self.render(v, sh_degree=self.cfg.sh_degree)
            img = img.clamp(0, 1)
            ps.append(psnr(img, v.image))
            ss.append(float(ssim(img, v.image)))
            if lp is not None:
                ls.append(float(lp(img.permute(2, 0, 1)[None], v.image.permute(2, 0, 1)[None])[0]))
            if write_renders:
                save_png(out / f"{i:04d}_{Path(v.frame.name).stem}.png", img)
        return {
            "psnr": float(np.mean(ps)),
            "ssim": float(np.mean(ss)),
            "lpips": float(np.mean(ls)) if ls else None,
            "num_test_views": len(views),
            "eval_split": "test" if self.test_views else "train-subset",
        }

    def finish(self) -> dict[str, Any]:
        gs = GaussianSet.from_parameters(self.params).to("cpu")
        save_ply(gs, self.out_dir / "point_cloud.ply")
        m = self.evaluate()
        v0 = self.train_views[0].frame
        metrics = {
            **m,
            "num_gaussians": len(gs),
            "train_seconds": round(self.train_seconds, 2),
            "steps": self.step,
            "backend": self.backend,
            "it_per_s": round(self.step / max(self.train_seconds, 1e-9), 3),
            "scene": self.capture.name,
            "format": self.capture.format,
            "resolution": [v0.width, v0.height],
            "num_train_views": len(self.train_views),
            "threads": torch.get_num_threads(),
        }
        atomic_write_text(self.out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        atomic_write_text(self.out_dir / "config.json", json.dumps(config_to_dict(self.cfg), indent=2) + "\n")
        scene = {"data": str(Path(self.capture.root).resolve()), "format": self.capture.format,
                 "downscale": self.cfg.downscale, "test_every": self.cfg.test_every, "name": self.capture.name,
                 "white_background": self.capture.white_background}  # fmt: skip
        atomic_write_text(self.out_dir / "scene.json", json.dumps(scene, indent=2) + "\n")
        return metrics


def save_png(path: Path, img: torch.Tensor) -> None:
    import imageio.v3 as iio

    arr = (img.detach().clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    with atomic_write(path, "wb") as f:
        f.write(iio.imwrite("<bytes>", arr, extension=".png"))
