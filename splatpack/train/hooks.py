"""What a training method adds to the 3DGS loop: a small object of hooks the loop calls.

Modelled on gsplat's ``Strategy`` (densification as hooks around the optimiser step): every hook
of :class:`MethodHooks` does nothing, and a method overrides the ones it needs —
:class:`~splatpack.train.compact.CompactHooks` (Compact-3DGS: masks, colour field, R-VQ) and
:class:`~splatpack.train.grid.GridHooks` (Self-Organizing Gaussians: sorted grid, smoothness,
quantisation-aware rendering). Per step, :class:`~splatpack.train.trainer.Trainer` calls
:meth:`~MethodHooks.before_step`; inside each render :meth:`~MethodHooks.render_params`, then
:meth:`~MethodHooks.render_inputs`; :meth:`~MethodHooks.aux_loss`;
:meth:`~MethodHooks.before_optimise`; :meth:`~MethodHooks.renumbered` when densification changed
the count; :meth:`~MethodHooks.after_step`. :meth:`~MethodHooks.removed` follows every removal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from splatpack.train.views import View

__all__ = ["RENDERED", "MethodHooks", "RenderInputs"]

#: the parameters a render reads before any activation (:meth:`MethodHooks.render_params`)
RENDERED = ("means", "quats", "scales", "opacities", "sh0", "shN")


@dataclass
class RenderInputs:
    """What one render rasterises per Gaussian, built by the loop from the parameters as rendered
    (:meth:`MethodHooks.render_params`) before :meth:`MethodHooks.render_inputs` changes it:
    ``quats`` [N, 4], ``log_scales`` and linear ``scales`` [N, 3], α ``opacities`` [N],
    ``colors`` (None: the SH of the parameters) of degree ``sh_degree``, and ``aux``, the loss
    terms the render adds."""

    quats: torch.Tensor
    log_scales: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh_degree: int
    colors: torch.Tensor | None = None
    aux: list[torch.Tensor] = field(default_factory=list)


class MethodHooks:
    """A training method's hooks; each does nothing here. ``params`` is the loop's live
    ``ParameterDict`` (the hooks may add, replace or remove entries, never keep it)."""

    name = ""  #: the key of :meth:`state_dict` in the checkpoint

    def setup(self, params: torch.nn.ParameterDict) -> None:
        """Add or replace per-Gaussian parameters and build the method's modules."""

    def learning_rates(self) -> dict[str, float]:
        """Adam learning rates of the per-Gaussian parameters the method adds."""
        return {}

    def modules(self) -> dict[str, torch.nn.Module]:
        """The method's modules, by checkpoint key (put in eval mode while evaluating)."""
        return {}

    def make_optimizers(self, fused: bool) -> dict[str, torch.optim.Optimizer]:
        """Optimisers of the modules, by checkpoint key (``fused``: as the loop's own, on CPU)."""
        return {}

    def before_step(self, params: torch.nn.ParameterDict, step: int) -> None:
        """Before the step's render."""

    def render_params(self, params: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """means, quats, scales, opacities, sh0 and shN as rendered at ``step``."""
        return params

    def render_inputs(
        self,
        inputs: RenderInputs,
        params: torch.nn.ParameterDict,
        rendered: dict[str, torch.Tensor],
        view: View,
        step: int,
    ) -> None:
        """Change what is rasterised (``rendered``: :meth:`render_params`' output)."""

    def aux_loss(self, params: torch.nn.ParameterDict) -> torch.Tensor | None:
        """A loss term on the parameters, added after the render's."""
        return None

    def before_optimise(self, step: int) -> None:
        """After backward, before the optimisers step (learning-rate schedules)."""

    def renumbered(self) -> None:
        """Densification changed the number of Gaussians (and their order)."""

    def removed(self, gone: torch.Tensor) -> None:
        """The Gaussians flagged in ``gone`` [N] were removed; the rest keep their order."""

    def after_step(self, params: torch.nn.ParameterDict, step: int, remove: Callable[[torch.Tensor], int]) -> None:
        """After densification; ``remove(gone)`` removes Gaussians and returns how many."""

    def state_dict(self) -> dict[str, Any]:
        """The method's state for the checkpoint: tensors, numbers, strings, lists, dicts."""
        return {}

    def load_state_dict(self, state: dict[str, Any], device: str) -> None:
        """Restore :meth:`state_dict` (tensors onto ``device``)."""
