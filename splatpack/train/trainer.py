"""The 3DGS training loop (Kerbl et al. 2023) over a :class:`~splatpack.captures.Capture`.

Per step: one random training view is rendered with :func:`splatpack.render.rasterize`,
the loss is L = (1 − λ)·L1 + λ·(1 − SSIM) with λ = 0.2 (eq. 7), Adam updates every parameter
group with its own learning rate (positions decay exponentially), the SH degree grows by one
every ``sh_degree_interval`` steps, and the densifier clones, splits, prunes and resets
opacities. Checkpoints (:mod:`~splatpack.train.checkpoint`) are written every
``checkpoint_every`` steps and ``resume=True`` continues from the newest one bit for bit.

Methods hook into the loop (:mod:`~splatpack.train.hooks`): Compact-3DGS with
``compact.enabled`` (:mod:`~splatpack.train.compact`), Self-Organizing Gaussians with
``grid.enabled`` (:mod:`~splatpack.train.grid`). When training ends the preset's
:class:`~splatpack.train.outputs.Output` writes the scene (``point_cloud.ply`` and/or
``scene.spk``), the scene it decodes to is evaluated (:mod:`~splatpack.train.evaluate`, test
renders in ``test_renders/``), and ``metrics.json``, ``config.json`` and ``scene.json`` go
next to it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from gsplat.strategy.ops import remove
from rich.console import Console

from splatpack.captures import Capture
from splatpack.core import GaussianSet
from splatpack.core import distributed as jobs
from splatpack.core.atomic import atomic_write_text
from splatpack.core.distributed import SINGLE, Ranks
from splatpack.core.errors import SplatpackError
from splatpack.core.notice import notice_if_slow
from splatpack.metrics import ssim, ssim_map
from splatpack.render import cpu_kernels, rasterize, resolve_backend, warm_up
from splatpack.train import distributed
from splatpack.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from splatpack.train.compact import CompactHooks
from splatpack.train.config import TrainConfig, config_to_dict
from splatpack.train.evaluate import RENDERS_DIR, eval_mode, evaluate_views, evaluation_views, lpips_model
from splatpack.train.grid import GridHooks
from splatpack.train.hooks import RENDERED, MethodHooks, RenderInputs
from splatpack.train.interrupt import StopRequest, TrainingInterrupted
from splatpack.train.outputs import output_for
from splatpack.train.progress import COMPILING, TrainProgress
from splatpack.train.strategy import make_densifier
from splatpack.train.views import View, initial_gaussians, load_views

__all__ = ["StepCallback", "Trainer", "photometric_loss"]


@dataclass
class StepCallback:
    """``fn(step, params)`` once after setup, after every ``every``-th step and after the last one
    (the live viewer, :mod:`splatpack.view.live`); ``params`` are the live parameters: copy what
    you keep, change nothing."""

    fn: Callable[[int, torch.nn.ParameterDict], None]
    every: int = 100


def photometric_loss(
    render: torch.Tensor, target: torch.Tensor, ssim_lambda: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """(1 − λ)·|render − target|₁ + λ·(1 − SSIM(render, target)) (3DGS eq. 7), images [H, W, 3].

    With a ``mask`` [H, W] in [0, 1] both terms are mask-weighted means, Σ m·e / Σ m over the
    pixels (and channels): pixels outside the mask do not count (``mask_mode: loss``)."""
    if mask is None:
        l1 = (render - target).abs().mean()
        return l1 if ssim_lambda == 0 else (1 - ssim_lambda) * l1 + ssim_lambda * (1 - ssim(render, target))
    w = mask[..., None].expand_as(render)
    total = w.sum().clamp_min(1e-8)
    l1 = ((render - target).abs() * w).sum() / total
    if ssim_lambda == 0:
        return l1
    s = (ssim_map(render, target)[0].permute(1, 2, 0) * w).sum() / total
    return (1 - ssim_lambda) * l1 + ssim_lambda * (1 - s)


def merge_camera_infos(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``info`` for the densifier from the per-camera ones of a batch, as gsplat's batched
    ``rasterization`` returns it: ``means2d`` (with its gradient) and ``radii`` stacked to
    [B, N, 2] and ``n_cameras`` = B, so that ``DefaultStrategy`` rescales each camera's gradient
    (the loss is their mean) and counts every camera a Gaussian is seen from."""
    if len(infos) == 1:
        return infos[0]
    means2d = torch.cat([i["means2d"].detach() for i in infos])
    means2d.grad = torch.cat([i["means2d"].grad for i in infos])
    if all(getattr(i["means2d"], "absgrad", None) is not None for i in infos):
        means2d.absgrad = torch.cat([i["means2d"].absgrad for i in infos])
    return {
        **infos[0],
        "means2d": means2d,
        "radii": torch.cat([i["radii"] for i in infos]),
        "n_cameras": len(infos),
        "gaussian_ids": None,
    }


class Trainer:
    """Trains ``capture`` with ``cfg`` into ``out_dir``; ``initial``: the splats of
    ``cfg.init_from`` when the caller has read them already."""

    def __init__(
        self,
        capture: Capture,
        cfg: TrainConfig,
        out_dir: str | Path,
        console=None,
        callbacks: Sequence[StepCallback] = (),
        initial: GaussianSet | None = None,
        ranks: Ranks = SINGLE,
    ):
        self.capture = capture
        self.ranks = ranks
        is_object = capture.format in ("blender", "synthetic")
        cfg = dataclasses.replace(cfg, compact=cfg.compact.resolved(is_object))
        if cfg.compact.enabled and cfg.compact.max_gaussians > 0:  # a budget, spread over densification
            d = dataclasses.replace(cfg.densify, max_gaussians=cfg.compact.max_gaussians, budget_ramp=True)
            cfg = dataclasses.replace(cfg, densify=d)
        self.cfg = c = cfg.scaled_schedule()
        self.compact = CompactHooks(c.compact, c.densify, c.steps, c.grid.enabled) if c.compact.enabled else None
        if c.batch_size < 1:
            raise SplatpackError(f"batch_size must be at least 1, not {c.batch_size}")
        self.out_dir = Path(out_dir)
        self.console = console or Console(stderr=True)
        if not ranks.is_main:
            self.console = Console(stderr=True, quiet=True)  # rank 0 reports for the job
        self.backend = resolve_backend(cfg.backend)
        self.device = "cuda" if self.backend == "cuda" else "cpu"
        if self.device == "cpu":
            threads = cfg.threads or max(1, (os.cpu_count() or 1) // ranks.world_size)  # ranks share the cores
            torch.set_num_threads(threads)
            if cfg.threads or ranks.distributed:
                cpu_kernels.set_num_threads(threads)
        qat_start = self.compact.vq_start if self.compact is not None and not c.compact.colour_field else None
        if self.compact is None and c.grid.enabled and c.grid.quantisation_aware:
            qat_start = c.grid.start  # the grid codec's values from the first sort on (compress --refine: 0)
        self.grid = GridHooks(c.grid, c.seed, qat_start) if c.grid.enabled else None
        self.hooks: list[MethodHooks] = [h for h in (self.compact, self.grid) if h is not None]
        self.output = output_for(c)
        self.background = torch.ones(3) if capture.white_background else torch.zeros(3)
        self.scene_scale = capture.scene_scale()
        self.step = 0
        self.train_seconds = 0.0
        self.max_seconds: float | None = None  # the time budget of the run in progress
        self.callbacks = list(callbacks) if ranks.is_main else []
        self.initial = initial

    # ---- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        jobs.init_process_group(self.ranks, self.device)
        torch.manual_seed(cfg.seed)  # the same on every rank: densification's splits draw from it
        self.train_views = load_views(self.capture.train, self.background, self.device, cfg.mask_mode)
        self.test_views = load_views(self.capture.test, self.background, self.device, cfg.mask_mode)
        if not self.train_views:
            raise SplatpackError("the capture has no training images", self.capture.root)
        if (
            cfg.batch_size * self.ranks.world_size > 1
            and len({(v.frame.width, v.frame.height) for v in self.train_views}) > 1
        ):
            raise SplatpackError(
                "batches of cameras need training images of one size; train with batch_size 1", self.capture.root
            )
        initial = self.initial
        if initial is None:
            say = lambda line: self.console.print(line, soft_wrap=True, markup=False)  # one line, unwrapped
            initial = initial_gaussians(self.capture, cfg, self.train_views, notice=say)
        self.params = initial.to(self.device).to_parameters()
        for h in self.hooks:
            h.setup(self.params)
        self.make_optimizers()
        self.densifier = make_densifier(cfg.densify)
        if self.ranks.distributed:
            self.densifier.reduce_statistics = distributed.sum_statistics
        self.densifier.check_sanity(self.params, self.optimizers)
        self.strategy_state = self.densifier.initialize_state(scene_scale=self.scene_scale)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.order: list[int] = []

    def make_optimizers(self) -> None:
        """Adam per parameter group (the methods' included), the positions' exponential decay and
        the methods' module optimisers."""
        lr = self.cfg.lr
        rates = {
            "means": lr.means * self.scene_scale,
            "quats": lr.quats,
            "scales": lr.scales,
            "opacities": lr.opacities,
            "sh0": lr.sh0,
            "shN": lr.shN,
        }
        for h in self.hooks:
            rates.update(h.learning_rates())
        fused = {"fused": True} if self.device == "cpu" else {}
        self.optimizers = {
            k: torch.optim.Adam([{"params": self.params[k], "lr": rates[k], "name": k}], eps=1e-15, **fused)
            for k in rates
            if k in self.params
        }
        self.base_rates = rates
        gamma = (lr.means_final / lr.means) ** (1.0 / max(1, self.cfg.steps)) if lr.means > 0 else 1.0  # frozen means
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizers["means"], gamma=gamma)
        self.net_optimizers = {}
        for h in self.hooks:
            self.net_optimizers.update(h.make_optimizers(bool(fused)))

    def decay_rates(self) -> None:
        """``lr_decay="progress"``: the positions' rate at base·(means_final/means)^p for the next
        step, p the run's progress: the share of its steps done, or of its time budget when that
        is further (a run the budget ends still ends at the final rate)."""
        lr = self.cfg.lr
        if lr.means <= 0:
            return
        p = (self.step + 1) / max(1, self.cfg.steps)
        if self.max_seconds:
            p = max(p, self.train_seconds / self.max_seconds)
        for group in self.optimizers["means"].param_groups:
            group["lr"] = self.base_rates["means"] * (lr.means_final / lr.means) ** min(1.0, p)

    def modules(self) -> dict[str, torch.nn.Module]:
        """The methods' modules, by checkpoint key."""
        return {k: m for h in self.hooks for k, m in h.modules().items()}

    # ---- rendering -------------------------------------------------------------------------------
    def current_sh_degree(self) -> int:
        """3DGS's schedule: one more SH band every ``sh_degree_interval`` steps — except when
        starting from trained splats (``init_from``, or ``initial`` as ``compress --refine``
        gives them), whose bands are all trained already."""
        if self.cfg.init_from or self.initial is not None:
            return self.cfg.sh_degree
        return min(self.step // self.cfg.sh_degree_interval, self.cfg.sh_degree)

    def render(self, view: View, sh_degree: int | None = None, background: torch.Tensor | None = None, aux=None):
        """Rasterize the model from ``view`` as the methods' hooks change it; their loss terms are
        appended to ``aux`` when given. Returns ``rasterize``'s (image, alpha, info)."""
        p = self.params
        rendered = {k: p[k] for k in RENDERED if k in p}
        for h in self.hooks:
            rendered = h.render_params(rendered, self.step)
        inputs = RenderInputs(
            quats=rendered["quats"],
            log_scales=rendered["scales"],
            scales=torch.exp(rendered["scales"]),
            opacities=torch.sigmoid(rendered["opacities"]),
            sh_degree=self.current_sh_degree() if sh_degree is None else sh_degree,
        )
        for h in self.hooks:
            h.render_inputs(inputs, p, rendered, view, self.step)
        colors = inputs.colors if inputs.colors is not None else torch.cat([rendered["sh0"], rendered["shN"]], dim=1)
        if aux is not None:
            aux.extend(inputs.aux)
        return rasterize(
            rendered["means"],
            inputs.quats,
            inputs.scales,
            inputs.opacities,
            colors,
            view.viewmat,
            view.K,
            view.frame.width,
            view.frame.height,
            sh_degree=inputs.sh_degree,
            background=(self.background if background is None else background).to(self.device),
            backend=self.backend,
            antialiased=self.cfg.antialiased,
        )

    def _next_view(self) -> View:
        if not self.order:
            self.order = torch.randperm(len(self.train_views), generator=self.rng).tolist()
        return self.train_views[self.order.pop()]

    # ---- training ----------------------------------------------------------------------------------
    def next_batch(self) -> list[tuple[View, torch.Tensor | None]]:
        """This rank's cameras (and random backgrounds) of the step's global batch: every rank
        draws the whole ``batch_size × world_size`` batch from the shared view order and keeps its
        slice, so N ranks see what one process with the global batch would."""
        b, r = self.cfg.batch_size, self.ranks.rank
        batch = []
        for _ in range(b * self.ranks.world_size):
            view = self._next_view()
            bg = torch.rand(3, generator=self.rng) if self.cfg.random_background and view.alpha is not None else None
            batch.append((view, bg))
        return batch[r * b : (r + 1) * b]

    def train_step(self) -> dict[str, float]:
        """One step over a batch of cameras: L is the mean of their losses (eq. 7 each); the
        gradients are averaged over the ranks; densification reads every camera's statistics."""
        cfg = self.cfg
        batch = self.next_batch()
        for h in self.hooks:
            h.before_step(self.params, self.step)
        totals, losses, sq_errors, infos = [], [], [], []
        for view, bg in batch:
            target = view.image
            if bg is not None:
                bg = bg.to(self.device)
                target = view.image + (bg - self.background.to(self.device)) * (1 - view.alpha[..., None])
            aux: list[torch.Tensor] = []
            image, _alpha, info = self.render(view, background=bg, aux=aux)
            self.densifier.step_pre_backward(self.params, self.optimizers, self.strategy_state, self.step, info)
            loss = photometric_loss(image, target, cfg.ssim_lambda, view.mask)
            totals.append(sum(aux, loss))
            losses.append(loss.detach())
            sq_errors.append(torch.mean((image.detach() - target) ** 2))
            infos.append(info)
        total = torch.stack(totals).mean()
        for term in [h.aux_loss(self.params) for h in self.hooks]:
            if term is not None:
                total = total + term
        total.backward()
        if self.ranks.distributed:
            jobs.average_gradients(
                [*self.params.values(), *(p for m in self.modules().values() for p in m.parameters())],
                self.ranks.world_size,
            )
        for h in self.hooks:
            h.before_optimise(self.step)
        for opt in [*self.optimizers.values(), *self.net_optimizers.values()]:
            opt.step()
            opt.zero_grad(set_to_none=True)
        if cfg.lr_decay == "progress":
            self.decay_rates()
        else:
            self.scheduler.step()
        if self.ranks.distributed:
            distributed.average_buffers(self.modules().values(), self.ranks.world_size)
        n_before = len(self.params["means"])
        info = merge_camera_infos(infos)
        self.densifier.step_post_backward(self.params, self.optimizers, self.strategy_state, self.step, info)
        if len(self.params["means"]) != n_before:
            for h in self.hooks:
                h.renumbered()
        for h in self.hooks:
            h.after_step(self.params, self.step, self.remove_gaussians)
        mse = torch.stack(sq_errors).mean().item()
        return {"loss": torch.stack(losses).mean().item(), "psnr": -10 * math.log10(max(mse, 1e-10))}

    @torch.no_grad()
    def remove_gaussians(self, gone: torch.Tensor) -> int:
        """Remove the Gaussians flagged in ``gone`` [N] (parameters, optimiser state, and what the
        methods keep per Gaussian); returns how many."""
        k = int(gone.sum())
        if k:
            remove(self.params, self.optimizers, self.strategy_state, gone)
            for h in self.hooks:
                h.removed(gone)
        return k

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def train(
        self, resume: bool = False, stop_at: int | None = None, max_seconds: float | None = None
    ) -> dict[str, Any] | None:
        """Train to ``cfg.steps`` (or pause at ``stop_at``: checkpoint written, returns None;
        or end early, as if at the last step, once the steps took ``max_seconds``)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.setup()
        if resume:
            if not load_checkpoint(self, self.checkpoint_path):
                raise SplatpackError(
                    "no checkpoint to resume from; train without --resume to start", self.checkpoint_path
                )
            distributed.keep_share(self.strategy_state, self.ranks)
            self.console.print(f"resumed from {self.checkpoint_path} at step {self.step}")
        with notice_if_slow(self.console.print, COMPILING):
            warm_up(self.backend, self.cfg.sh_degree)
        with StopRequest() as stop:
            return self._train(stop, stop_at, max_seconds)

    def _train(self, stop: StopRequest, stop_at: int | None, max_seconds: float | None) -> dict[str, Any] | None:
        self.notify(force=True)
        cfg = self.cfg
        self.max_seconds = max_seconds
        with TrainProgress(self.console, cfg.steps, self.step, cfg.log_every) as progress:
            while self.step < cfg.steps and (max_seconds is None or self.train_seconds < max_seconds):
                if self.stop_requested(stop):
                    self.save_checkpoint()
                    raise TrainingInterrupted(self.step, cfg.steps, self.checkpoint_path)
                t0 = time.perf_counter()
                stats = self.train_step()
                self.step += 1
                self.train_seconds += time.perf_counter() - t0
                self.notify(force=self.step == cfg.steps)
                progress.update(self.step, stats, len(self.params["means"]))
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
                    self.save_checkpoint()
                if stop_at is not None and self.step >= stop_at:
                    self.save_checkpoint()
                    return None
        self.save_checkpoint()
        if self.ranks.distributed:
            same = jobs.all_equal(jobs.parameter_digest(dict(self.params)))
            if not same:
                raise SplatpackError("the training processes' Gaussians differ: the ranks diverged", self.out_dir)
            if not self.ranks.is_main:
                return None  # rank 0 writes and evaluates the scene
        return self.finish()

    def stop_requested(self, stop: StopRequest) -> bool:
        """Ctrl-C seen, by any rank (they all stop at the same step)."""
        return jobs.any_rank(stop.requested, self.device) if self.ranks.distributed else stop.requested

    def save_checkpoint(self) -> None:
        """The checkpoint, written by rank 0 (every rank holds the same state)."""
        state = distributed.summed_statistics(self.strategy_state) if self.ranks.distributed else None  # all ranks
        if self.ranks.is_main:
            save_checkpoint(self, self.checkpoint_path, state)

    def notify(self, force: bool = False) -> None:
        """Run the step callbacks due at this step (all of them when ``force``)."""
        for cb in self.callbacks:
            if force or self.step % cb.every == 0:
                cb.fn(self.step, self.params)

    # ---- evaluation and output -------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, write_renders: bool = True, render_fn=None) -> dict[str, Any]:
        """Test-view metrics; ``render_fn(view) → image`` defaults to the training model."""
        views, split = evaluation_views(self.train_views, self.test_views)
        if render_fn is None:

            def render_fn(v: View) -> torch.Tensor:
                return self.render(v, sh_degree=self.cfg.sh_degree)[0]

        with eval_mode(self.modules().values()):
            lpips = lpips_model(self.device, self.console) if self.cfg.eval_lpips else None
            renders_dir = self.out_dir / RENDERS_DIR if write_renders else None
            return evaluate_views(views, split, render_fn, lpips, renders_dir)

    def require_gaussians(self, when: str) -> None:
        """A one-line error instead of a crash in the codecs when pruning left nothing."""
        if len(self.params["means"]) == 0:
            raise SplatpackError(
                f"no Gaussians are left {when} (pruning removed them all: lower compact.masking.lambda_mask "
                "or codec.min_opacity, or train longer)",
                self.out_dir,
            )

    def finish(self) -> dict[str, Any]:
        """Write the preset's output, evaluate the scene it decodes to, write the run's JSON files."""
        self.require_gaussians("after training")
        written = self.output.write(self)
        m = self.evaluate(render_fn=written.render)
        v0 = self.train_views[0].frame
        metrics = {
            **m,
            "num_gaussians": written.num_gaussians,
            "train_seconds": round(self.train_seconds, 2),
            "steps": self.step,
            "backend": self.backend,
            "it_per_s": round(self.step / max(self.train_seconds, 1e-9), 3),
            "batch_size": self.cfg.batch_size,
            "world_size": self.ranks.world_size,
            "scene": self.capture.name,
            "format": self.capture.format,
            "resolution": [v0.width, v0.height],
            "num_train_views": len(self.train_views),
            "threads": torch.get_num_threads(),
            **written.extra,
        }
        atomic_write_text(self.out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        atomic_write_text(self.out_dir / "config.json", json.dumps(config_to_dict(self.cfg), indent=2) + "\n")
        scene = {
            "data": str(Path(self.capture.root).resolve()),
            "format": self.capture.format,
            "downscale": self.cfg.downscale,
            "test_every": self.cfg.test_every,
            "name": self.capture.name,
            "white_background": self.capture.white_background,
        }
        atomic_write_text(self.out_dir / "scene.json", json.dumps(scene, indent=2) + "\n")
        return metrics
