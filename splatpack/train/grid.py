"""Self-Organizing Gaussians (Morgenstern et al., ECCV 2024) in the training loop.

The Gaussians are PLAS-sorted into a 2D grid (:mod:`splatpack.compress.grid_sort`; from
``grid.start``, again every ``grid.resort_every`` steps and whenever densification renumbers
them) and a smoothness loss pulls every attribute grid towards its blurred copy
(:mod:`splatpack.compress.grid_smoothness`), so the final planes compress as images. With ``grid.quantisation_aware`` the VQ phase of a full-preset run renders the
attributes as the grid codec will decode them (straight-through). With the codec's per-Gaussian
precision (``drop_fraction``) the Gaussians that drop low bits are chosen once, by render
sensitivity at the first quantisation-aware step, rendered at their coarser precision from then
on and written with exactly those drops, so training absorbs them (``compress --refine
--adaptive-precision``). With the SH rest coded as a low-rank basis (``sh_mode="basis"``) the
rank-r PCA generator and the coefficients' shared-step lattice the codec would fit are fitted
once at the first quantisation-aware step; the SH rest is projected onto that subspace after
every optimiser step (projected gradient descent) and rendered with its coefficients on that
lattice, and the file is coded on exactly that generator and lattice: training fits the r
coefficients to the renders, and neither the discarded ranks nor the rounding are left to
the writer. Gaussians whose SH rest is exactly zero when the lattice is fitted
(:func:`~splatpack.compress.sh_basis.zeroed_sh_rest`; the codec stores them as a mask) stay
zero: the generator is fitted to the others, and they are projected and rendered as zero. An SH rest coded as 3(K−1) planes (``sh_mode="grid"``) is rendered
quantised over its planes' current ranges, as the codec will quantise the final ones. An SH
rest coded as a palette (``sh_mode="palette"``, the quality levels 0–4) is fitted once at the
first quantisation-aware step (k-means, :func:`~splatpack.codecs.grid.palette.fit_palette`);
each Gaussian keeps its label, its SH rest is projected after every optimiser step onto its
label's mean (so the centroids train) and rendered quantised as the file's centroids are,
and the file is coded on exactly those labels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from splatpack.codecs.grid import MAX_SPARE, GridCodecConfig, quantisation_aware, quantised_sh_rest
from splatpack.codecs.grid.basis import basis_coefficients
from splatpack.codecs.grid.encode import lattice_ranges, scene_drops
from splatpack.codecs.grid.palette import fit_palette, label_means
from splatpack.codecs.grid.qat import sh_rest_generator
from splatpack.compress.grid_smoothness import grid_smoothness_loss
from splatpack.compress.grid_sort import GridSortConfig, sort_features, sort_into_grid
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.core.frames import positive_w_quats
from splatpack.train.config import GridTraining
from splatpack.train.hooks import MethodHooks

__all__ = ["GridHooks"]

#: the rendered parameters :func:`quantisation_aware` takes (the SH rest: :func:`quantised_sh_rest`)
QAT_ATTRIBUTES = ("means", "quats", "scales", "opacities", "sh0")


class GridHooks(MethodHooks):
    """The sorted grid of ``cfg`` (sorts seeded with ``seed`` + step). ``qat_start``: the first
    step rendered quantisation-aware, or None (only the full preset with per-Gaussian SH has a
    VQ phase whose attributes the grid codec writes)."""

    name = "grid"

    def __init__(self, cfg: GridTraining, seed: int, qat_start: int | None = None):
        self.cfg, self.seed = cfg, seed
        grid_config = cfg.codec_config()  # the grid codec's settings, checked now rather than when training ends
        if cfg.quantisation_aware and grid_config.frames == "best":
            # training renders one frame choice: the |w|-largest turn (what "best" keeps on trained runs)
            grid_config = dataclasses.replace(grid_config, frames="turned")
        self.grid_config: GridCodecConfig = grid_config
        self.qat_config = grid_config if cfg.quantisation_aware and qat_start is not None else None
        self.qat_start = qat_start
        self.index: torch.Tensor | None = None  # [H, W] PLAS arrangement, −1 = empty cell
        self.sorts, self.sort_seconds = 0, 0.0
        #: per attribute, the low bits k [N] each Gaussian drops, and the fixed (lo, hi) of the
        #: attributes on a lattice (both chosen at the first QAT step)
        self.drops: dict[str, torch.Tensor] | None = None
        self.ranges: dict[str, tuple] | None = None
        #: [N] the Gaussians whose basis-coded SH rest stays zero (None: none), with ``ranges``
        self.sh_zero: torch.Tensor | None = None

    def setup(self, params: torch.nn.ParameterDict) -> None:
        self.index = None
        self.sorts, self.sort_seconds = 0, 0.0
        self.drops = self.ranges = self.sh_zero = None

    @property
    def sh_basis(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The SH rest's (mean [3(K−1)], basis [3(K−1), r]) it is projected onto (float32, CPU): the
        generator of ``ranges["shN"]`` (lo, hi, table), fitted at the first QAT step (``sh_mode`` basis)."""
        lattice = (self.ranges or {}).get("shN")
        if lattice is None or self.qat_config is None or self.qat_config.sh_mode != "basis":
            return None
        return sh_rest_generator(lattice[2], "cpu")

    @property
    def sh_labels(self) -> torch.Tensor | None:
        """[N] each Gaussian's palette label (int64, CPU): those of ``ranges["shN"]`` (lo, hi,
        labels), fitted at the first QAT step (``sh_mode`` palette)."""
        lattice = (self.ranges or {}).get("shN")
        if lattice is None or self.qat_config is None or self.qat_config.sh_mode != "palette":
            return None
        return torch.as_tensor(np.asarray(lattice[2], np.int64))

    def attributes(self, params: torch.nn.ParameterDict) -> dict[str, torch.Tensor]:
        """The per-Gaussian attribute groups the grid is sorted on and smoothed over."""
        p = params
        out = {
            "means": p["means"],
            "scales": p["scales"],
            "opacities": torch.sigmoid(p["opacities"])[:, None],
            "quats": positive_w_quats(torch.nn.functional.normalize(p["quats"], dim=-1)),
        }
        for k in ("sh0", "shN"):
            if k in p and p[k].numel():
                out[k] = p[k]
        return out

    @torch.no_grad()
    def sort(self, params: torch.nn.ParameterDict, step: int) -> None:
        """PLAS-sort the Gaussians on the SOG attributes (each group standardised, then
        weighted) into :attr:`index`."""
        try:
            feats = sort_features(self.attributes(params), self.cfg.sort_weights)
        except ValueError as e:
            raise SplatpackError(f"grid.sort_weights: {e}", None) from None
        idx, stats = sort_into_grid(feats, cfg=GridSortConfig(seed=self.seed + step))
        self.index = torch.from_numpy(idx).to(params["means"].device)
        self.sorts += 1
        self.sort_seconds += stats["seconds"]

    def smoothness_loss(self, params: torch.nn.ParameterDict) -> torch.Tensor:
        g = self.cfg
        weights = {k: g.smoothness_weight * v for k, v in g.smoothness.items()}
        return grid_smoothness_loss(self.attributes(params), self.index, weights, g.kernel_size, g.sigma)

    def before_step(self, params: torch.nn.ParameterDict, step: int) -> None:
        g = self.cfg
        due = self.index is None or (g.resort_every > 0 and (step - g.start) % g.resort_every == 0)
        if g.smoothness_weight and step >= g.start and due:  # λ = 0: the codec sorts once
            self.sort(params, step)
        qat = self.qat_config
        if qat is not None and step >= self.qat_start and self.ranges is None:
            gs = GaussianSet.from_parameters(params).to("cpu")
            drops = scene_drops(gs, qat) if qat.drop_fraction else {}
            self.drops = {k: torch.from_numpy(v).to(params["means"].device) for k, v in drops.items()}
            self.ranges = lattice_ranges(gs, qat)
            if qat.sh_mode in ("basis", "palette") and "shN" in params and params["shN"].numel():
                self.ranges["shN"] = self._sh_rest_lattice(gs, qat, params["means"].device)
                self.project_sh_rest(params)

    def _sh_rest_lattice(self, gs: GaussianSet, qat: GridCodecConfig, device) -> tuple:
        """The SH rest's lattice, fitted once: a basis's (lo, hi, table), the Gaussians whose SH
        rest is zero set aside in :attr:`sh_zero` (the codec's zero mask), or a palette's
        (lo, hi, labels)."""
        shn = gs.shN.double().numpy().reshape(len(gs), -1)
        if qat.sh_mode == "palette":
            labels, _, lo, hi = fit_palette(shn, qat)
            return lo, hi, labels.astype(np.int64)
        zero = ~shn.any(axis=1)
        if zero.any() and not zero.all():  # the codec's zero mask: fit the others
            self.sh_zero = torch.from_numpy(zero).to(device)
            shn = shn[~zero]
        return basis_coefficients(shn, qat.basis_rank, qat.shN.bits)[1:]  # (lo, hi, table)

    @torch.no_grad()
    def project_sh_rest(self, params: torch.nn.ParameterDict) -> None:
        """The SH rest onto the affine subspace μ + span(B) of :attr:`sh_basis`, or onto the
        palette's (every row its label's mean row: the nearest point where each label's rows
        are one centroid), in place."""
        labels = self.sh_labels
        if labels is not None:
            shn, labels = params["shN"], labels.to(params["shN"].device)
            shn.copy_(label_means(shn.reshape(len(shn), -1), labels)[labels].reshape(shn.shape))
            return
        generator = self.sh_basis
        if generator is None:
            return
        shn = params["shN"]
        mean, basis = (t.to(shn.device) for t in generator)
        d = shn.reshape(len(shn), -1) - mean
        projected = mean + (d @ basis) @ basis.T
        if self.sh_zero is not None:
            projected[self.sh_zero] = 0.0
        shn.copy_(projected.reshape(shn.shape))

    def after_step(self, params: torch.nn.ParameterDict, step: int, remove) -> None:
        self.project_sh_rest(params)

    def render_params(self, params: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """In the VQ phase of a quantisation-aware run, as the grid codec will decode them
        (straight-through, :func:`~splatpack.codecs.grid.quantisation_aware`)."""
        if self.qat_config is None or step < self.qat_start:
            return params
        ranges = self.ranges or {}
        rendered = quantisation_aware(*(params[k] for k in QAT_ATTRIBUTES), self.qat_config, self.drops, ranges)
        out = dict(zip(QAT_ATTRIBUTES, rendered))
        out["shN"] = quantised_sh_rest(params["shN"], self.qat_config, ranges.get("shN"), self.sh_zero)
        return out

    def aux_loss(self, params: torch.nn.ParameterDict) -> torch.Tensor | None:
        return None if self.index is None else self.smoothness_loss(params)

    def renumbered(self) -> None:
        self.index = None  # sort again
        self.drops = self.ranges = self.sh_zero = None  # choose again (the zeroed SH rests are still zero)

    def removed(self, gone: torch.Tensor) -> None:
        """The removed Gaussians leave empty cells and the rest renumber."""
        if self.index is not None:
            gi, new_id = self.index, torch.cumsum((~gone).long(), 0) - 1
            occupied = gi >= 0
            alive = torch.zeros_like(occupied)
            alive[occupied] = ~gone[gi[occupied]]
            self.index = torch.where(alive, new_id[gi.clamp_min(0)], torch.full_like(gi, -1))
        if self.drops is not None:
            self.drops = {k: v[~gone.to(v.device)] for k, v in self.drops.items()}
        if self.sh_zero is not None:
            self.sh_zero = self.sh_zero[~gone.to(self.sh_zero.device)]
        if self.sh_labels is not None:
            lo, hi, labels = self.ranges["shN"]
            self.ranges["shN"] = (lo, hi, np.asarray(labels)[~gone.cpu().numpy()])

    def output_index(self, n: int) -> np.ndarray | None:
        """The training grid for the grid scene of ``n`` Gaussians, or None (the codec sorts
        afresh) when pruning emptied over half its cells or nothing was smoothed."""
        gi = self.index
        if gi is None or gi.numel() > 2 * n + MAX_SPARE or not self.cfg.smoothness_weight:
            return None
        return gi.cpu().numpy()

    def output_drops(self, n: int) -> dict[str, np.ndarray] | None:
        """The drops training rendered, for the grid scene of ``n`` Gaussians, or None (the codec
        chooses by sensitivity)."""
        if not self.drops or any(len(v) != n for v in self.drops.values()):
            return None
        return {k: v.cpu().numpy() for k, v in self.drops.items()}

    def output_ranges(self) -> dict[str, tuple] | None:
        """The fixed ranges training rendered with, or None (the codec chooses its own)."""
        return self.ranges or None

    def state_dict(self) -> dict[str, Any]:
        index = None if self.index is None else self.index.cpu()
        drops = None if self.drops is None else {k: v.cpu() for k, v in self.drops.items()}
        ranges = None if self.ranges is None else {k: [torch.from_numpy(v) for v in r] for k, r in self.ranges.items()}
        return {
            "index": index,
            "sorts": self.sorts,
            "sort_seconds": self.sort_seconds,
            "drops": drops,
            "ranges": ranges,
            "sh_zero": None if self.sh_zero is None else self.sh_zero.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any], device: str) -> None:
        self.index = None if state["index"] is None else state["index"].to(device)
        self.sorts, self.sort_seconds = int(state["sorts"]), float(state["sort_seconds"])
        drops, ranges = state.get("drops"), state.get("ranges")
        self.drops = None if drops is None else {k: v.to(device) for k, v in drops.items()}
        self.ranges = None if ranges is None else {k: tuple(v.numpy() for v in r) for k, r in ranges.items()}
        zero = state.get("sh_zero")
        self.sh_zero = None if zero is None else zero.to(device)
