"""Densification: gsplat's ``DefaultStrategy`` (clone, split, prune, opacity reset; 3DGS §5.2).

gsplat 1.5.3 writes the opacity-reset test as ``step % reset_every == 0 & step > 0``, which
Python parses as a chained comparison that is never true, so opacities are never reset. The
subclass here performs the reset (to 2 × ``prune_opa``, as gsplat intends) and adds an
optional cap on the number of Gaussians for fixed CPU budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

from gsplat.strategy import DefaultStrategy
from gsplat.strategy.ops import reset_opa


@dataclass
class Densifier(DefaultStrategy):
    max_gaussians: int = 0

    def step_post_backward(self, params, optimizers, state, step, info, packed=False):
        if step >= self.refine_stop_iter:
            return
        capped = self.max_gaussians > 0 and len(params["means"]) >= self.max_gaussians
        grow = self.grow_grad2d
        if capped:
            self.grow_grad2d = float("inf")  # prune only
        try:
            super().step_post_backward(params, optimizers, state, step, info, packed=packed)
        finally:
            self.grow_grad2d = grow
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
    )


__all__ = ["Densifier", "make_densifier"]
