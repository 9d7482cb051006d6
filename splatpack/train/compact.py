"""Compact-3DGS (Lee et al., CVPR 2024) in the training loop.

A learnable mask logit per Gaussian, binarised straight-through and multiplied into scale and
opacity, with the loss λ_m·mean σ(m) (§3.1, :mod:`splatpack.compress.masking`); masked
Gaussians are pruned at each refinement step and every ``masking.prune_every`` steps after. A
hash-grid colour field replaces SH (§3.2, :mod:`splatpack.compress.colour_field`). For the last
``rvq.steps`` steps (the VQ phase) scale and rotation — and, with per-Gaussian SH, the SH rest —
are rendered residual-vector-quantised, straight-through, with the commitment losses added
(§3.3, :mod:`splatpack.compress.rvq`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from splatpack.codecs.compact import field_colors
from splatpack.compress.colour_field import ColourField, contraction_box
from splatpack.compress.masking import binary_mask, mask_loss, masked_out
from splatpack.compress.rvq import ResidualVQ
from splatpack.core.errors import SplatpackError
from splatpack.core.frames import positive_w_quats
from splatpack.train.config import CompactConfig, DensifyConfig
from splatpack.train.hooks import MethodHooks, RenderInputs
from splatpack.train.views import View

__all__ = ["RVQ_ATTRIBUTES", "CompactHooks"]

#: what ``compact.rvq.attributes`` may name
RVQ_ATTRIBUTES = ("scales", "quats", "shN")


class CompactHooks(MethodHooks):
    """Masks, colour field and R-VQ of ``cfg`` (resolved for the capture) over ``steps`` steps;
    ``densify`` sets the mask-pruning schedule, ``grid_enabled`` says the run writes a grid scene."""

    name = "compact"

    def __init__(self, cfg: CompactConfig, densify: DensifyConfig, steps: int, grid_enabled: bool):
        targets = set(cfg.rvq.attributes)
        if targets - set(RVQ_ATTRIBUTES):
            raise SplatpackError(
                f"compact.rvq.attributes: unknown {sorted(targets - set(RVQ_ATTRIBUTES))} (scales, quats, shN)"
            )
        if not grid_enabled and not {"scales", "quats"} <= targets:
            raise SplatpackError(
                "compact.rvq.attributes must hold scales and quats without grid.enabled "
                "(the compact .spk stores them as R-VQ indices)"
            )
        self.cfg, self.densify = cfg, densify
        self.vq_start = steps - cfg.rvq.steps
        self.field: ColourField | None = None
        self.vq_scale: ResidualVQ | None = None
        self.vq_rot: ResidualVQ | None = None
        self.vq_shn: ResidualVQ | None = None
        self.field_optimizer: torch.optim.Optimizer | None = None
        self.pruned = 0  # Gaussians removed by their mask

    def in_vq_phase(self, step: int) -> bool:
        return step >= self.vq_start

    def setup(self, params: torch.nn.ParameterDict) -> None:
        """Mask logits, the colour field (instead of SH) and the R-VQs."""
        c, n, device = self.cfg, len(params["means"]), params["means"].device
        self.field = self.vq_shn = None
        self.pruned = 0
        if c.masking.enabled:
            params["mask"] = torch.nn.Parameter(torch.full((n,), c.masking.init_logit, device=device))
        if c.colour_field:
            del params["sh0"], params["shN"]
            lo, hi = contraction_box(params["means"].detach())
            self.field = ColourField(c.colour.model, lo, hi).to(device)
        self.vq_scale = ResidualVQ(3, c.rvq.vq).to(device)
        self.vq_rot = ResidualVQ(4, c.rvq.vq).to(device)
        if "shN" in c.rvq.attributes and not c.colour_field and params["shN"].shape[1]:
            self.vq_shn = ResidualVQ(params["shN"][0].numel(), c.rvq.sh_vq).to(device)

    def learning_rates(self) -> dict[str, float]:
        return {"mask": self.cfg.masking.lr}

    def modules(self) -> dict[str, torch.nn.Module]:
        mods = {"field": self.field, "vq_scale": self.vq_scale, "vq_rot": self.vq_rot, "vq_shn": self.vq_shn}
        return {k: m for k, m in mods.items() if m is not None}

    def make_optimizers(self, fused: bool) -> dict[str, torch.optim.Optimizer]:
        c, out = self.cfg, {}
        self.field_optimizer = None
        if self.field is not None:
            kw = {"fused": True} if fused else {}
            self.field_optimizer = torch.optim.Adam(self.field.parameters(), lr=c.colour.lr, eps=1e-15, **kw)
            out["field"] = self.field_optimizer
        if c.rvq.vq.kind == "simvq":
            vq_params = list(self.vq_scale.parameters()) + list(self.vq_rot.parameters())
            out["vq"] = torch.optim.Adam(vq_params, lr=c.rvq.lr, eps=1e-15)
        if self.vq_shn is not None and c.rvq.sh_vq.kind == "simvq":
            out["vq_shn"] = torch.optim.Adam(self.vq_shn.parameters(), lr=c.rvq.lr, eps=1e-15)
        return out

    def field_lr(self, step: int) -> float:
        """Compact-3DGS's net schedule: linear warm-up from 1 %, then ×γ at each milestone."""
        c = self.cfg.colour
        warm = 0.01 + 0.99 * min(1.0, step / c.warmup_steps) if c.warmup_steps > 0 else 1.0
        return c.lr * warm * c.gamma ** sum(step >= m for m in c.milestones)

    def before_optimise(self, step: int) -> None:
        if self.field_optimizer is not None:
            for g in self.field_optimizer.param_groups:
                g["lr"] = self.field_lr(step)

    def render_inputs(
        self,
        inputs: RenderInputs,
        params: torch.nn.ParameterDict,
        rendered: dict[str, torch.Tensor],
        view: View,
        step: int,
    ) -> None:
        """Geometry R-VQ'd (straight-through) in the VQ phase and multiplied by the binary mask;
        colours from the field (degree 0), or SH with the rest R-VQ'd in the VQ phase when
        ``rvq.attributes`` has ``shN``. Adds one loss term: the commitment and mask losses."""
        c, vq_phase = self.cfg, self.in_vq_phase(step)
        aux = torch.zeros((), device=inputs.quats.device)
        if vq_phase and "scales" in c.rvq.attributes:
            log_space = c.rvq.scale_space == "log"
            sq, _, l1 = self.vq_scale(inputs.log_scales if log_space else inputs.scales)
            inputs.scales = torch.exp(sq) if log_space else sq
            aux = aux + l1
        if vq_phase and "quats" in c.rvq.attributes:
            inputs.quats, _, l2 = self.vq_rot(positive_w_quats(inputs.quats))
            aux = aux + l2
        if "mask" in params:
            m = binary_mask(params["mask"], c.masking.threshold)
            inputs.scales, inputs.opacities = inputs.scales * m[:, None], inputs.opacities * m
            aux = aux + c.masking.lambda_mask * mask_loss(params["mask"])
        colour_aux: list[torch.Tensor] = []
        if self.field is not None:
            inputs.colors, inputs.sh_degree = field_colors(self.field, params["means"], view.viewmat), 0
        elif self.vq_shn is not None and vq_phase:
            shn = params["shN"]
            q, _, loss = self.vq_shn(shn.reshape(len(shn), -1))
            inputs.colors = torch.cat([rendered["sh0"], q.reshape(shn.shape)], dim=1)
            colour_aux.append(loss)
        inputs.aux.append(aux + sum(colour_aux))

    def after_step(self, params: torch.nn.ParameterDict, step: int, remove: Callable[[torch.Tensor], int]) -> None:
        """Prune the masked Gaussians at each refinement step and every ``prune_every`` after."""
        if "mask" not in params:
            return
        d, every = self.densify, self.cfg.masking.prune_every
        refine = d.refine_start < step < d.refine_stop and step % d.refine_every == 0
        if refine or (step >= d.refine_stop and step % every == 0):
            self.prune(params, remove)

    @torch.no_grad()
    def prune(self, params: torch.nn.ParameterDict, remove: Callable[[torch.Tensor], int]) -> int:
        """Remove the Gaussians whose mask is off (σ(m) ≤ ε); returns how many."""
        k = remove(masked_out(params["mask"], self.cfg.masking.threshold))
        self.pruned += k
        return k

    def state_dict(self) -> dict[str, Any]:
        return {"pruned": self.pruned}

    def load_state_dict(self, state: dict[str, Any], device: str) -> None:
        self.pruned = int(state["pruned"])
