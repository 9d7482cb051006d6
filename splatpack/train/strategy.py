"""Densification: gsplat's ``DefaultStrategy`` (clone, split, prune, opacity reset; 3DGS §5.2).

gsplat 1.5.3 writes the opacity-reset test as ``step % reset_every == 0 & step > 0``, which
Python parses as a chained comparison that is never true, so opacities are never reset. The
subclass here performs the reset (to 2 × ``prune_opa``, as gsplat intends), adds an
optional cap on the number of Gaussians for fixed CPU budgets, and, in data-parallel training,
sums the statistics over the ranks before each refinement decides anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from gsplat.strategy import DefaultStrategy
from gsplat.strategy.ops import reset_opa


@dataclass
class Densifier(DefaultStrategy):
    max_gaussians: int = 0
    budget_ramp: bool = False  # spread the growth to max_gaussians over the refinement window
    reduce_statistics: Callable[[dict[str, Any]], None] | None = None  # e.g. a sum over ranks

    def allowed(self, state, step: int, n: int) -> int:
        """How many Gaussians the cap allows at ``step``: ``max_gaussians``, or with
        ``budget_ramp`` a linear ramp from the count at the first refinement (at most the cap) to ``max_gaussians``
        at ``refine_stop`` (as budgeted densification, Mallick et al., "Taming 3DGS", 2024: a
        fixed cap filled greedily spends the budget early and leaves later detail without
        Gaussians)."""
        if not self.budget_ramp:
            return self.max_gaussians
        n0 = state.setdefault("budget_start", min(n, self.max_gaussians))
        t = (step - self.refine_start_iter) / max(1, self.refine_stop_iter - self.refine_start_iter)
        return int(n0 + (self.max_gaussians - n0) * min(1.0, max(0.0, t)))

    def _growth_threshold(self, state, room: int) -> float:
        """The 2D-gradient threshold that lets at most ``room`` Gaussians clone or split (each adds
        one): the vanilla threshold, raised to the room-th largest mean gradient if needed."""
        if room <= 0:
            return float("inf")
        grads = state["grad2d"] / state["count"].clamp_min(1)
        high = grads > self.grow_grad2d
        if int(high.sum()) <= room:
            return self.grow_grad2d
        return float(torch.topk(grads[high], room + 1).values[-1])

    def _grow_gs(self, params, optimizers, state, step):
        if self.reduce_statistics is not None:  # refinement starts here: decide on the global statistics
            self.reduce_statistics(state)
        if self.max_gaussians <= 0:
            return super()._grow_gs(params, optimizers, state, step)
        grow = self.grow_grad2d
        room = self.allowed(state, step, len(params["means"])) - len(params["means"])
        self.grow_grad2d = self._growth_threshold(state, room)
        try:
            return super()._grow_gs(params, optimizers, state, step)
        finally:
            self.grow_grad2d = grow

    def step_post_backward(self, params, optimizers, state, step, info, packed=False):
        if step >= self.refine_stop_iter:
            return
        super().step_post_backward(params, optimizers, state, step, info, packed=packed)
        if step > 0 and step % self.reset_every == 0:
            reset_opa(params=params, optimizers=optimizers, state=state, value=self.prune_opa * 2.0)


def make_densifier(cfg) -> Densifier:
    """Build from a :class:`~splatpack.train.config.DensifyConfig`."""
    return Densifier(
        prune_opa=cfg.prune_opa,
        grow_grad2d=cfg.grow_grad2d,
        grow_scale3d=cfg.grow_scale3d,
        prune_scale3d=cfg.prune_scale3d,
        refine_start_iter=cfg.refine_start,
        refine_stop_iter=cfg.refine_stop,
        refine_every=cfg.refine_every,
        reset_every=cfg.reset_every,
        absgrad=cfg.absgrad,
        max_gaussians=cfg.max_gaussians,
        budget_ramp=cfg.budget_ramp,
    )


__all__ = ["Densifier", "make_densifier"]
