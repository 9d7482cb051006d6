"""The 3DGS training loop (Kerbl et al. 2023) over a :class:`~splatpack.captures.Capture`.

Per step: one random training view is rendered with :func:`splatpack.render.rasterize`,
the loss is L = (1 − λ)·L1 + λ·(1 − SSIM) with λ = 0.2 (eq. 7), Adam updates every parameter
group with its own learning rate (positions decay exponentially), the SH degree grows by one
every ``sh_degree_interval`` steps, and the densifier clones, splits, prunes and resets
opacities. Checkpoints are written atomically every ``checkpoint_every`` steps and
``resume=True`` continues from the newest one bit-for-bit (RNG states included).

Outputs in ``out_dir``: ``point_cloud.ply`` (INRIA layout), ``metrics.json`` and the test
renders in ``test_renders/``.

With ``compact.enabled`` (``configs/compact.yaml``) the loop trains Compact-3DGS (Lee et al.,
CVPR 2024): a learnable mask per Gaussian (STE, λ_m·mean σ(m), masked Gaussians pruned at each
refinement step and every ``prune_every`` steps after), a hash-grid colour field in place of SH,
and residual VQ of scale and rotation for the last ``rvq.steps`` steps; the result is
post-processed and written as ``scene.spk``, and the metrics are those of the decoded file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from splatpack.captures import Capture, Frame, load_image
from splatpack.codecs.compact import (
    dequantize,
    field_colors,
    pack_views,
    quantize_compact,
    read_compact,
    render_compact,
    write_compact,
)
from splatpack.codecs.storage import storage_table
from splatpack.compress.masking import binary_mask, mask_loss, masked_out
from splatpack.compress.rvq import codebook_usage
from splatpack.core.errors import SplatpackError
from splatpack.core.frames import positive_w_quats
from splatpack.core.images import save_png
from splatpack.core.atomic import atomic_write, atomic_write_text
from splatpack.formats.ply import ply_size, save_ply
from splatpack.metrics import LPIPSUnavailable, psnr, ssim
from splatpack.core import GaussianSet
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


@dataclass
class StepCallback:
    """``fn(step, params)`` once after setup, after every ``every``-th step and after the last one
    (the live viewer, :mod:`splatpack.view.live`); ``params`` are the live parameters: copy what
    you keep, change nothing."""

    fn: Callable[[int, torch.nn.ParameterDict], None]
    every: int = 100


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
    """From ``cfg.init_from`` (trained splats), the capture's SfM points, or random in the scene
    bounds when there are none."""
    if cfg.init_from:
        from splatpack.formats import load_scene

        gs = load_scene(cfg.init_from)
        if gs.sh_degree != cfg.sh_degree:
            raise SplatpackError(f"the splats have SH degree {gs.sh_degree}, the config {cfg.sh_degree}", cfg.init_from)
        return gs
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
    def __init__(
        self, capture: Capture, cfg: TrainConfig, out_dir: str | Path, console=None,
        callbacks: Sequence[StepCallback] = (), initial: GaussianSet | None = None,
    ):  # fmt: skip
        from rich.console import Console

        self.capture = capture
        is_object = capture.format in ("blender", "synthetic")
        cfg = dataclasses.replace(cfg, compact=cfg.compact.resolved(is_object))
        if cfg.compact.enabled and cfg.compact.max_gaussians > 0:  # a budget, spread over densification
            d = dataclasses.replace(cfg.densify, max_gaussians=cfg.compact.max_gaussians, budget_ramp=True)
            cfg = dataclasses.replace(cfg, densify=d)
        self.cfg = cfg.scaled_schedule()
        self.compact = self.cfg.compact if self.cfg.compact.enabled else None
        if self.compact is not None:
            targets = set(self.compact.rvq.attributes)
            if targets - {"scales", "quats", "shN"}:
                raise SplatpackError(f"compact.rvq.attributes: unknown {sorted(targets - {'scales', 'quats', 'shN'})} (scales, quats, shN)")
            if not self.cfg.grid.enabled and not {"scales", "quats"} <= targets:
                raise SplatpackError("compact.rvq.attributes must hold scales and quats without grid.enabled "
                                     "(the compact .spk stores them as R-VQ indices)")  # fmt: skip
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
        self.callbacks = list(callbacks)
        self.initial = initial  # the splats of cfg.init_from, when the caller has read them already

    # ---- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.train_views = load_views(self.capture.train, self.background, self.device)
        self.test_views = load_views(self.capture.test, self.background, self.device)
        if not self.train_views:
            raise SplatpackError("the capture has no training images", self.capture.root)
        initial = self.initial if self.initial is not None else initial_gaussians(self.capture, cfg)
        self.params = initial.to(self.device).to_parameters()
        self.field = self.vq_scale = self.vq_rot = self.vq_shn = None
        # the grid codec's settings, checked now rather than when training ends
        self.grid_codec = cfg.grid.codec_config() if cfg.grid.enabled else None
        if self.grid_codec is not None and cfg.grid.quantisation_aware and self.grid_codec.frames == "best":
            # training renders one frame choice: the |w|-largest turn (what "best" keeps on trained runs)
            self.grid_codec = dataclasses.replace(self.grid_codec, frames="turned")
        if self.compact is not None:
            self._setup_compact()
        self._make_optimizers()
        self.densifier = make_densifier(cfg.densify)
        self.densifier.check_sanity(self.params, self.optimizers)
        self.strategy_state = self.densifier.initialize_state(scene_scale=self.scene_scale)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.order: list[int] = []
        self.grid_index: torch.Tensor | None = None  # [H, W] PLAS arrangement (SOG training)

    def _setup_compact(self) -> None:
        """Mask logits, the colour field (instead of SH) and the geometry R-VQ."""
        from splatpack.compress.colour_field import ColourField
        from splatpack.compress.rvq import ResidualVQ

        c, n = self.compact, len(self.params["means"])
        if c.masking.enabled:
            self.params["mask"] = torch.nn.Parameter(torch.full((n,), c.masking.init_logit, device=self.device))
        if c.colour_field:
            del self.params["sh0"], self.params["shN"]
            lo, hi = field_aabb(self.params["means"].detach())
            self.field = ColourField(c.colour.model, lo, hi).to(self.device)
        self.vq_scale = ResidualVQ(3, c.rvq.vq).to(self.device)
        self.vq_rot = ResidualVQ(4, c.rvq.vq).to(self.device)
        if "shN" in c.rvq.attributes and not c.colour_field and self.params["shN"].shape[1]:
            self.vq_shn = ResidualVQ(self.params["shN"][0].numel(), c.rvq.sh_vq).to(self.device)

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
        if self.compact is not None:
            rates["mask"] = self.compact.masking.lr
        fused = {"fused": True} if self.device == "cpu" else {}
        self.optimizers = {
            k: torch.optim.Adam([{"params": self.params[k], "lr": rates[k], "name": k}], eps=1e-15, **fused)
            for k in rates
            if k in self.params
        }
        gamma = (lr.means_final / lr.means) ** (1.0 / max(1, self.cfg.steps))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizers["means"], gamma=gamma)
        self.net_optimizers = {}
        if self.field is not None:
            self.net_optimizers["field"] = torch.optim.Adam(
                self.field.parameters(), lr=self.compact.colour.lr, eps=1e-15, **fused
            )
        if self.vq_scale is not None and self.compact.rvq.vq.kind == "simvq":
            vq_params = list(self.vq_scale.parameters()) + list(self.vq_rot.parameters())
            self.net_optimizers["vq"] = torch.optim.Adam(vq_params, lr=self.compact.rvq.lr, eps=1e-15)
        if self.vq_shn is not None and self.compact.rvq.sh_vq.kind == "simvq":
            self.net_optimizers["vq_shn"] = torch.optim.Adam(self.vq_shn.parameters(), lr=self.compact.rvq.lr, eps=1e-15)

    def field_lr(self, step: int) -> float:
        """Compact-3DGS's net schedule: linear warm-up from 1 %, then ×γ at each milestone."""
        c = self.compact.colour
        warm = 0.01 + 0.99 * min(1.0, step / c.warmup_steps) if c.warmup_steps > 0 else 1.0
        return c.lr * warm * c.gamma ** sum(step >= m for m in c.milestones)

    def in_vq_phase(self, step: int | None = None) -> bool:
        step = self.step if step is None else step
        return self.compact is not None and step >= self.cfg.steps - self.compact.rvq.steps

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
            "net_optimizers": {k: o.state_dict() for k, o in self.net_optimizers.items()},
            "modules": {k: m.state_dict() for k, m in self._modules_dict().items()},
            "grid_index": None if self.grid_index is None else self.grid_index.cpu(),
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
            for k, m in self._modules_dict().items():
                m.load_state_dict(state["modules"][k])
            for k, o in self.net_optimizers.items():
                o.load_state_dict(state["net_optimizers"][k])
        except Exception as e:
            raise SplatpackError(f"cannot resume from checkpoint: {type(e).__name__}: {e}", path) from None
        self.strategy_state = {
            k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in state["strategy_state"].items()
        }
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.order = list(state["order"])
        gi = state.get("grid_index")
        self.grid_index = None if gi is None else gi.to(self.device)
        self.step = int(state["step"])
        self.train_seconds = float(state["train_seconds"])
        return True

    def _modules_dict(self) -> dict[str, torch.nn.Module]:
        mods = {"field": self.field, "vq_scale": self.vq_scale, "vq_rot": self.vq_rot, "vq_shn": self.vq_shn}
        return {k: m for k, m in mods.items() if m is not None}

    # ---- rendering -------------------------------------------------------------------------------
    def current_sh_degree(self) -> int:
        """3DGS's schedule: one more SH band every ``sh_degree_interval`` steps — except when
        starting from trained splats (``init_from``), whose bands are all trained already."""
        if self.cfg.init_from:
            return self.cfg.sh_degree
        return min(self.step // self.cfg.sh_degree_interval, self.cfg.sh_degree)

    @property
    def qat_codec(self):
        """The grid codec whose decoded values the VQ phase renders (full preset with
        ``grid.quantisation_aware``), else None."""
        c = self.compact
        quantise = self.cfg.grid.quantisation_aware and c is not None and not c.colour_field
        return self.grid_codec if quantise else None

    def coded_params(self) -> dict[str, torch.Tensor]:
        """means, quats, scales, opacities (and sh0) as rendered at this step: in the VQ phase of a
        full-preset run with ``grid.quantisation_aware``, as the grid codec will decode them
        (straight-through, :func:`~splatpack.codecs.grid.quantisation_aware`)."""
        p = self.params
        names = ("means", "quats", "scales", "opacities", "sh0")
        if self.qat_codec is not None and self.in_vq_phase():
            from splatpack.codecs.grid import quantisation_aware

            return dict(zip(names, quantisation_aware(*(p[k] for k in names), self.qat_codec)))
        return {k: p[k] for k in names if k in p}

    def geometry(self, coded: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quats, linear scales, opacities, auxiliary loss) as rendered at this step: R-VQ'd
        (straight-through) in the VQ phase and multiplied by the binary mask (Compact-3DGS)."""
        p = self.params
        coded = coded or self.coded_params()
        quats, log_scales, opac = coded["quats"], coded["scales"], torch.sigmoid(coded["opacities"])
        aux = torch.zeros((), device=self.device)
        if self.compact is None:
            return quats, torch.exp(log_scales), opac, aux
        c = self.compact
        scales = torch.exp(log_scales)
        if self.in_vq_phase() and "scales" in c.rvq.attributes:
            log_space = c.rvq.scale_space == "log"
            sq, _, l1 = self.vq_scale(log_scales if log_space else scales)
            scales = torch.exp(sq) if log_space else sq
            aux = aux + l1
        if self.in_vq_phase() and "quats" in c.rvq.attributes:
            quats, _, l2 = self.vq_rot(positive_w_quats(quats))
            aux = aux + l2
        if "mask" in p:
            m = binary_mask(p["mask"], c.masking.threshold)
            scales, opac = scales * m[:, None], opac * m
            aux = aux + c.masking.lambda_mask * mask_loss(p["mask"])
        return quats, scales, opac, aux

    def colors(self, view: View, sh_degree: int | None, aux: list | None = None, coded=None) -> tuple[torch.Tensor, int]:
        """Per-Gaussian colours: the colour field's RGB for this view (degree 0), or SH — the SH
        rest R-VQ'd (straight-through) in the VQ phase when ``rvq.attributes`` has ``shN``."""
        p = self.params
        sh0 = (coded or p)["sh0"] if "sh0" in p else None
        if self.field is not None:
            return field_colors(self.field, p["means"], view.viewmat), 0
        degree = self.current_sh_degree() if sh_degree is None else sh_degree
        shn = p["shN"]
        if self.vq_shn is not None and self.in_vq_phase():
            q, _, loss = self.vq_shn(shn.reshape(len(shn), -1))
            shn = q.reshape(shn.shape)
            if aux is not None:
                aux.append(loss)
        return torch.cat([sh0, shn], dim=1), degree

    def render(self, view: View, sh_degree: int | None = None, background: torch.Tensor | None = None, aux=None):
        coded = self.coded_params()
        quats, scales, opac, aux_loss = self.geometry(coded)
        colour_aux: list[torch.Tensor] = []
        colors, degree = self.colors(view, sh_degree, colour_aux, coded)
        if aux is not None:
            aux.append(aux_loss + sum(colour_aux))
        return rasterize(
            coded["means"], quats, scales, opac, colors,
            view.viewmat, view.K, view.frame.width, view.frame.height,
            sh_degree=degree,
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
        if cfg.grid.enabled and cfg.grid.smoothness_weight and self.step >= cfg.grid.start:  # λ = 0: the codec sorts once
            every = cfg.grid.resort_every
            if self.grid_index is None or (every > 0 and (self.step - cfg.grid.start) % every == 0):
                self.sort_grid()
        aux: list[torch.Tensor] = []
        image, _alpha, info = self.render(view, background=bg, aux=aux)
        loss = photometric_loss(image, target, cfg.ssim_lambda)
        total = loss + aux[0] if self.compact is not None else loss
        if self.grid_index is not None:
            total = total + self.smoothness_loss()
        self.densifier.step_pre_backward(self.params, self.optimizers, self.strategy_state, self.step, info)
        total.backward()
        if "field" in self.net_optimizers:
            for g in self.net_optimizers["field"].param_groups:
                g["lr"] = self.field_lr(self.step)
        for opt in [*self.optimizers.values(), *self.net_optimizers.values()]:
            opt.step()
            opt.zero_grad(set_to_none=True)
        self.scheduler.step()
        n_before = len(self.params["means"])
        self.densifier.step_post_backward(self.params, self.optimizers, self.strategy_state, self.step, info)
        if self.grid_index is not None and len(self.params["means"]) != n_before:
            self.grid_index = None  # densification renumbered the Gaussians: sort again
        if self.compact is not None and "mask" in self.params:
            d, every = cfg.densify, self.compact.masking.prune_every
            refine = d.refine_start < self.step < d.refine_stop and self.step % d.refine_every == 0
            if refine or (self.step >= d.refine_stop and self.step % every == 0):
                self.prune_masked()
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
        self.notify(force=True)
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
                self.notify(force=self.step == cfg.steps)
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

    def notify(self, force: bool = False) -> None:
        """Run the step callbacks due at this step (all of them when ``force``)."""
        for cb in self.callbacks:
            if force or self.step % cb.every == 0:
                cb.fn(self.step, self.params)

    @torch.no_grad()
    def prune_masked(self) -> int:
        """Remove the Gaussians whose mask is off (σ(m) ≤ ε); returns how many."""
        k = self.remove_gaussians(masked_out(self.params["mask"], self.compact.masking.threshold))
        self.strategy_state["mask_pruned"] = self.strategy_state.get("mask_pruned", 0) + k
        return k

    @torch.no_grad()
    def remove_gaussians(self, gone: torch.Tensor) -> int:
        """Remove the Gaussians flagged in ``gone`` [N] (parameters, optimiser state, and the grid,
        where they leave empty cells and the rest renumber); returns how many."""
        from gsplat.strategy.ops import remove

        k = int(gone.sum())
        if k:
            remove(self.params, self.optimizers, self.strategy_state, gone)
            if self.grid_index is not None:
                gi, new_id = self.grid_index, torch.cumsum((~gone).long(), 0) - 1
                occupied = gi >= 0
                alive = torch.zeros_like(occupied)
                alive[occupied] = ~gone[gi[occupied]]
                self.grid_index = torch.where(alive, new_id[gi.clamp_min(0)], torch.full_like(gi, -1))
        return k

    # ---- self-organising grid (SOG) ---------------------------------------------------------------
    def grid_attributes(self) -> dict[str, torch.Tensor]:
        """The per-Gaussian attribute groups the grid is sorted on and smoothed over."""
        p = self.params
        out = {"means": p["means"], "scales": p["scales"], "opacities": torch.sigmoid(p["opacities"])[:, None],
               "quats": positive_w_quats(torch.nn.functional.normalize(p["quats"], dim=-1))}  # fmt: skip
        for k in ("sh0", "shN"):
            if k in p and p[k].numel():
                out[k] = p[k]
        return out

    @torch.no_grad()
    def sort_grid(self) -> None:
        """PLAS-sort the Gaussians on the SOG attributes (each group standardised, then
        weighted) into ``self.grid_index``."""
        from splatpack.compress.grid_sort import GridSortConfig, sort_features, sort_into_grid

        try:
            feats = sort_features(self.grid_attributes(), self.cfg.grid.sort_weights)
        except ValueError as e:
            raise SplatpackError(f"grid.sort_weights: {e}", None) from None
        idx, stats = sort_into_grid(feats, cfg=GridSortConfig(seed=self.cfg.seed + self.step))
        self.grid_index = torch.from_numpy(idx).to(self.device)
        self.strategy_state["grid_sorts"] = self.strategy_state.get("grid_sorts", 0) + 1
        self.strategy_state["grid_sort_seconds"] = self.strategy_state.get("grid_sort_seconds", 0.0) + stats["seconds"]

    def smoothness_loss(self) -> torch.Tensor:
        from splatpack.compress.grid_smoothness import grid_smoothness_loss

        g = self.cfg.grid
        weights = {k: g.smoothness_weight * v for k, v in g.smoothness.items()}
        return grid_smoothness_loss(self.grid_attributes(), self.grid_index, weights, g.kernel_size, g.sigma)

    # ---- evaluation and export -----------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, write_renders: bool = True, render_fn=None) -> dict[str, Any]:
        """Test-view metrics; ``render_fn(view) → image`` defaults to the training model."""
        modules = self._modules_dict().values()
        for mod in modules:  # no EMA codebook updates while evaluating
            mod.eval()
        try:
            return self._evaluate(write_renders, render_fn)
        finally:
            for mod in modules:
                mod.train()

    def _evaluate(self, write_renders: bool, render_fn) -> dict[str, Any]:
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
            img = render_fn(v) if render_fn is not None else self.render(v, sh_degree=self.cfg.sh_degree)[0]
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

    def _require_gaussians(self, when: str) -> None:
        """A one-line error instead of a crash in the codecs when pruning left nothing."""
        if len(self.params["means"]) == 0:
            raise SplatpackError(
                f"no Gaussians are left {when} (pruning removed them all: lower compact.masking.lambda_mask "
                "or codec.min_opacity, or train longer)", self.out_dir,
            )  # fmt: skip

    def finish(self) -> dict[str, Any]:
        self._require_gaussians("after training")
        if self.compact is not None and self.cfg.grid.enabled:
            m, extra = self.finish_full()
            n = extra.pop("num_gaussians")
        elif self.compact is not None:
            m, extra = self.finish_compact()
            n = extra.pop("num_gaussians")
        else:
            gs = GaussianSet.from_parameters(self.params).to("cpu")
            save_ply(gs, self.out_dir / "point_cloud.ply")
            m, extra, n = self.evaluate(), {}, len(gs)
            if self.cfg.grid.enabled:
                m, extra = self.finish_grid(gs, m)
        v0 = self.train_views[0].frame
        metrics = {
            **m,
            "num_gaussians": n,
            "train_seconds": round(self.train_seconds, 2),
            "steps": self.step,
            "backend": self.backend,
            "it_per_s": round(self.step / max(self.train_seconds, 1e-9), 3),
            "scene": self.capture.name,
            "format": self.capture.format,
            "resolution": [v0.width, v0.height],
            "num_train_views": len(self.train_views),
            "threads": torch.get_num_threads(),
            **extra,
        }
        atomic_write_text(self.out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        atomic_write_text(self.out_dir / "config.json", json.dumps(config_to_dict(self.cfg), indent=2) + "\n")
        scene = {"data": str(Path(self.capture.root).resolve()), "format": self.capture.format,
                 "downscale": self.cfg.downscale, "test_every": self.cfg.test_every, "name": self.capture.name,
                 "white_background": self.capture.white_background}  # fmt: skip
        atomic_write_text(self.out_dir / "scene.json", json.dumps(scene, indent=2) + "\n")
        return metrics


    def finish_grid(self, gs: GaussianSet, trained: dict[str, Any], shn_codebooks=None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write ``scene.spk`` as a grid scene (the training grid's arrangement, SOG's image
        codecs at ``grid.quality`` with ``grid.codec`` over it) and evaluate the scene decoded
        from it. ``shn_codebooks``: the trained SH-rest R-VQ codebooks (``sh_mode: rvq``)."""
        from splatpack.codecs.grid import MAX_SPARE, read_grid_scene, write_grid_scene

        path = self.out_dir / "scene.spk"
        gi = self.grid_index
        if gi is not None and (gi.numel() > 2 * len(gs) + MAX_SPARE or not self.cfg.grid.smoothness_weight):
            gi = None  # pruning emptied over half the cells, or nothing was smoothed: the codec sorts afresh
        index = None if gi is None else gi.cpu().numpy()
        codec = self.grid_codec
        if codec.sh_mode != "rvq":
            shn_codebooks = None
        size = write_grid_scene(path, gs, codec, grid_index=index, shn_codebooks=shn_codebooks)
        decoded = read_grid_scene(path).to(self.device)
        bg = self.background.to(self.device)

        def render_fn(v: View) -> torch.Tensor:
            return rasterize(decoded.means, decoded.quats, decoded.linear_scales, decoded.alphas, decoded.sh,
                             v.viewmat, v.K, v.frame.width, v.frame.height, sh_degree=decoded.sh_degree,
                             background=bg, backend=self.backend)[0]  # fmt: skip

        m = self.evaluate(render_fn=render_fn)
        extra = {
            "size_bytes": size,
            "ply_equivalent_bytes": ply_size(len(gs), self.cfg.sh_degree),
            "storage_bytes": storage_table(path),
            "psnr_before_postprocess": trained["psnr"],
            "grid_sorts": int(self.strategy_state.get("grid_sorts", 0)),
            "grid_sort_seconds": round(float(self.strategy_state.get("grid_sort_seconds", 0.0)), 2),
        }
        return m, extra

    @torch.no_grad()
    def finish_full(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Masking + R-VQ + sorted grids (``configs/full.yaml``): the last mask prune and the
        ``codec.min_opacity`` cut, then the (R-VQ'd) Gaussians written as a grid scene, with the
        trained SH-rest codebooks when the grid codec stores the SH rest as R-VQ."""
        c = self.compact
        if "mask" in self.params:
            self.prune_masked()
        if c.codec.min_opacity > 0:
            self.remove_gaussians(torch.sigmoid(self.params["opacities"]) < c.codec.min_opacity)
        self._require_gaussians(f"after the final mask prune and the α < {c.codec.min_opacity} cut")
        trained = self.evaluate(write_renders=False)
        p = self.params
        gs = GaussianSet.from_parameters(p)
        if "scales" in c.rvq.attributes and bool(self.vq_scale.initialized):
            log_space = c.rvq.scale_space == "log"
            sq = self.vq_scale.quantize(p["scales"] if log_space else torch.exp(p["scales"]))[0]
            gs.scales = sq if log_space else torch.log(sq.clamp_min(1e-12))
        if "quats" in c.rvq.attributes and bool(self.vq_rot.initialized):
            gs.quats = self.vq_rot.quantize(positive_w_quats(p["quats"]))[0]
        books, usage = None, {}
        if self.vq_shn is not None and bool(self.vq_shn.initialized):
            books = self.vq_shn.codebooks().detach().cpu()
            idx = self.vq_shn.quantize(p["shN"].reshape(len(gs), -1))[1]
            usage = {"sh_rest": codebook_usage(idx, c.rvq.sh_vq.codebook_size)}
        m, extra = self.finish_grid(gs.to("cpu"), trained, shn_codebooks=books)
        extra.update(num_gaussians=len(gs), mask_pruned=int(self.strategy_state.get("mask_pruned", 0)))
        if usage:
            extra["codebook_usage"] = usage
        return m, extra

    @torch.no_grad()
    def compact_code(self):
        """Final prune, then the post-processed streams of the trained compact model."""
        c = self.compact
        if "mask" in self.params:
            self.prune_masked()
        p = self.params
        log_space = c.rvq.scale_space == "log"
        s_in = p["scales"] if log_space else torch.exp(p["scales"])
        q_in = positive_w_quats(p["quats"])
        for vq, x in ((self.vq_scale, s_in), (self.vq_rot, q_in)):
            if not bool(vq.initialized):  # training ended before the VQ phase
                vq.init_kmeans(x)
        _, sidx = self.vq_scale.quantize(s_in)
        _, ridx = self.vq_rot.quantize(q_in)
        sh = None if self.field is not None else torch.cat([p["sh0"], p["shN"]], dim=1)
        meta = {"scene": self.capture.name, "scale_space": c.rvq.scale_space,
                "background": self.background.tolist(), "steps": self.step}  # fmt: skip
        train = self.train_views[:: max(1, math.ceil(len(self.train_views) / 32))]  # ≤ 32 cameras, for baking
        views = pack_views([(v.viewmat.cpu(), v.K.cpu(), v.frame.width, v.frame.height) for v in train])
        code = quantize_compact(
            p["means"], torch.sigmoid(p["opacities"]), sidx, ridx, self.vq_scale.codebooks(), self.vq_rot.codebooks(),
            c.codec, field=self.field, sh=sh, meta=meta, views=views,
        )  # fmt: skip
        return code, {"scale": codebook_usage(sidx, c.rvq.vq.codebook_size),
                      "rotation": codebook_usage(ridx, c.rvq.vq.codebook_size)}  # fmt: skip

    def finish_compact(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write ``scene.spk`` and evaluate the scene decoded from it."""
        before = self.evaluate(write_renders=False)  # the trained model, before post-processing
        code, usage = self.compact_code()
        path = self.out_dir / "scene.spk"
        size = write_compact(path, code)
        scene = dequantize(read_compact(path))
        bg = self.background.to(self.device)

        def render_fn(v: View) -> torch.Tensor:
            return render_compact(scene, v.viewmat, v.K, v.frame.width, v.frame.height, bg, self.backend)[0]

        m = self.evaluate(render_fn=render_fn)
        n = len(scene)
        extra = {
            "num_gaussians": n,
            "size_bytes": size,
            "ply_equivalent_bytes": ply_size(n, self.cfg.sh_degree),
            "storage_bytes": storage_table(path),
            "psnr_before_postprocess": before["psnr"],
            "mask_pruned": int(self.strategy_state.get("mask_pruned", 0)),
            "codebook_usage": usage,
            "codebook_kind": self.compact.rvq.vq.kind,
        }
        return m, extra


def field_aabb(means: torch.Tensor, lo_q: float = 0.01, hi_q: float = 0.99, pad: float = 0.1):
    """The box the colour field's contraction maps to [−1, 1]³: the 1st–99th percentile box of
    the initial Gaussians, padded by 10 % (Compact-3DGS fixes [−1, 1]³; a data-driven box puts
    the capture's content, not its outliers, in the uncontracted region)."""
    q = torch.quantile(means.float().cpu()[:: max(1, len(means) // 100_000)], torch.tensor([lo_q, hi_q]), dim=0)
    lo, hi = q[0], q[1]
    ext = (hi - lo).clamp_min(1e-6) * pad
    return lo - ext, hi + ext
