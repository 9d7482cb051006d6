"""What a run writes when training ends, one :class:`Output` per preset (:func:`output_for`).

* :class:`PlyOutput` (``default``): ``point_cloud.ply`` (INRIA layout); the trained model is
  evaluated as it is.
* :class:`CompactOutput` (``compact``, Compact-3DGS §3.4): the last mask prune, the post-processed
  streams written as ``scene.spk`` of kind compact-3dgs.
* :class:`GridOutput` (``sog``): ``point_cloud.ply`` and ``scene.spk`` as a grid scene in the
  training grid's arrangement.
* :class:`FullOutput` (``full``): the last mask prune and the ``codec.min_opacity`` cut, then the
  R-VQ'd Gaussians as a grid scene, with the trained SH-rest codebooks when the grid codec
  stores the SH rest as R-VQ.

Every output but the PLY is evaluated on the scene decoded from its file; the trained model's
PSNR is kept as ``psnr_before_postprocess``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from splatpack.codecs.compact import (
    CompactCode,
    dequantize,
    pack_views,
    quantize_compact,
    read_compact,
    render_compact,
    write_compact,
)
from splatpack.codecs.grid import read_grid_scene, write_grid_scene
from splatpack.codecs.storage import storage_table
from splatpack.compress.rvq import codebook_usage
from splatpack.core import GaussianSet
from splatpack.core.frames import positive_w_quats
from splatpack.formats.ply import ply_size, save_ply
from splatpack.render import render_gaussians
from splatpack.train.config import TrainConfig
from splatpack.train.views import View

if TYPE_CHECKING:
    from splatpack.train.trainer import Trainer

__all__ = ["CompactOutput", "FullOutput", "GridOutput", "Output", "PlyOutput", "Written", "compact_code", "output_for"]

PLY_NAME, SCENE_NAME = "point_cloud.ply", "scene.spk"


@dataclass
class Written:
    """A written scene: ``render(view) → image`` of the scene decoded from the file (None: the
    trained model), its number of Gaussians and the metrics that describe the file."""

    render: Callable[[View], torch.Tensor] | None
    num_gaussians: int
    extra: dict[str, Any]


class Output:
    """How a preset's trained model becomes its files in the run's folder."""

    def write(self, trainer: Trainer) -> Written:
        raise NotImplementedError


def output_for(cfg: TrainConfig) -> Output:
    """The output of the preset ``cfg`` trains: ``compact.enabled`` × ``grid.enabled``."""
    if cfg.compact.enabled:
        return FullOutput() if cfg.grid.enabled else CompactOutput()
    return GridOutput() if cfg.grid.enabled else PlyOutput()


def write_ply(trainer: Trainer) -> GaussianSet:
    gs = GaussianSet.from_parameters(trainer.params).to("cpu")
    save_ply(gs, trainer.out_dir / PLY_NAME)
    return gs


class PlyOutput(Output):
    def write(self, trainer: Trainer) -> Written:
        return Written(None, len(write_ply(trainer)), {})


def write_grid(trainer: Trainer, gs: GaussianSet, trained: dict[str, Any], shn_codebooks=None) -> Written:
    """Write ``gs`` as a grid scene (the training grid's arrangement, SOG's image codecs at
    ``grid.quality`` with ``grid.codec`` over it). ``trained``: the metrics before writing;
    ``shn_codebooks``: the trained SH-rest R-VQ codebooks (``sh_mode: rvq``)."""
    t, grid = trainer, trainer.grid
    path = t.out_dir / SCENE_NAME
    config = grid.grid_config
    if config.sh_mode != "rvq":
        shn_codebooks = None
    index, drops, ranges = grid.output_index(len(gs)), grid.output_drops(len(gs)), grid.output_ranges()
    size = write_grid_scene(path, gs, config, grid_index=index, shn_codebooks=shn_codebooks, drops=drops, ranges=ranges)
    decoded = read_grid_scene(path).to(t.device)
    bg = t.background.to(t.device)

    def render(v: View) -> torch.Tensor:
        return render_gaussians(
            decoded, v.viewmat, v.K, v.frame.width, v.frame.height, background=bg, backend=t.backend
        )[0]

    extra = {
        "size_bytes": size,
        "ply_equivalent_bytes": ply_size(len(gs), t.cfg.sh_degree),
        "storage_bytes": storage_table(path),
        "psnr_before_postprocess": trained["psnr"],
        "grid_sorts": int(grid.sorts),
        "grid_sort_seconds": round(float(grid.sort_seconds), 2),
    }
    return Written(render, len(gs), extra)


class GridOutput(Output):
    def write(self, trainer: Trainer) -> Written:
        gs = write_ply(trainer)
        return write_grid(trainer, gs, trainer.evaluate(write_renders=False))


class FullOutput(Output):
    @torch.no_grad()
    def write(self, trainer: Trainer) -> Written:
        t, c = trainer, trainer.compact
        codec = c.cfg.codec
        if "mask" in t.params:
            c.prune(t.params, t.remove_gaussians)
        if codec.min_opacity > 0:
            t.remove_gaussians(torch.sigmoid(t.params["opacities"]) < codec.min_opacity)
        t.require_gaussians(f"after the final mask prune and the α < {codec.min_opacity} cut")
        trained = t.evaluate(write_renders=False)
        p, rvq = t.params, c.cfg.rvq
        gs = GaussianSet.from_parameters(p)
        if "scales" in rvq.attributes and bool(c.vq_scale.initialized):
            log_space = rvq.scale_space == "log"
            sq = c.vq_scale.quantize(p["scales"] if log_space else torch.exp(p["scales"]))[0]
            gs.scales = sq if log_space else torch.log(sq.clamp_min(1e-12))
        if "quats" in rvq.attributes and bool(c.vq_rot.initialized):
            gs.quats = c.vq_rot.quantize(positive_w_quats(p["quats"]))[0]
        books, usage = None, {}
        if c.vq_shn is not None and bool(c.vq_shn.initialized):
            books = c.vq_shn.codebooks().detach().cpu()
            idx = c.vq_shn.quantize(p["shN"].reshape(len(gs), -1))[1]
            usage = {"sh_rest": codebook_usage(idx, rvq.sh_vq.codebook_size)}
        written = write_grid(t, gs.to("cpu"), trained, shn_codebooks=books)
        written.extra["mask_pruned"] = int(c.pruned)
        if usage:
            written.extra["codebook_usage"] = usage
        return written


@torch.no_grad()
def compact_code(trainer: Trainer) -> tuple[CompactCode, dict[str, list[float]]]:
    """The last mask prune, then the post-processed streams of the trained compact model and its
    codebook usage."""
    t, c = trainer, trainer.compact
    if "mask" in t.params:
        c.prune(t.params, t.remove_gaussians)
    p, rvq = t.params, c.cfg.rvq
    log_space = rvq.scale_space == "log"
    s_in = p["scales"] if log_space else torch.exp(p["scales"])
    q_in = positive_w_quats(p["quats"])
    for vq, x in ((c.vq_scale, s_in), (c.vq_rot, q_in)):
        if not bool(vq.initialized):  # training ended before the VQ phase
            vq.init_kmeans(x)
    _, sidx = c.vq_scale.quantize(s_in)
    _, ridx = c.vq_rot.quantize(q_in)
    sh = None if c.field is not None else torch.cat([p["sh0"], p["shN"]], dim=1)
    meta = {
        "scene": t.capture.name,
        "scale_space": rvq.scale_space,
        "background": t.background.tolist(),
        "steps": t.step,
    }
    train = t.train_views[:: max(1, math.ceil(len(t.train_views) / 32))]  # ≤ 32 cameras, for baking
    views = pack_views([(v.viewmat.cpu(), v.K.cpu(), v.frame.width, v.frame.height) for v in train])
    code = quantize_compact(
        p["means"],
        torch.sigmoid(p["opacities"]),
        sidx,
        ridx,
        c.vq_scale.codebooks(),
        c.vq_rot.codebooks(),
        c.cfg.codec,
        field=c.field,
        sh=sh,
        meta=meta,
        views=views,
    )
    return code, {
        "scale": codebook_usage(sidx, rvq.vq.codebook_size),
        "rotation": codebook_usage(ridx, rvq.vq.codebook_size),
    }


class CompactOutput(Output):
    def write(self, trainer: Trainer) -> Written:
        t = trainer
        before = t.evaluate(write_renders=False)  # the trained model, before post-processing
        code, usage = compact_code(t)
        path = t.out_dir / SCENE_NAME
        size = write_compact(path, code)
        scene = dequantize(read_compact(path)).to(t.device)  # the training device: CUDA renders need it there
        bg = t.background.to(t.device)

        def render(v: View) -> torch.Tensor:
            return render_compact(scene, v.viewmat, v.K, v.frame.width, v.frame.height, bg, t.backend)[0]

        n = len(scene)
        extra = {
            "size_bytes": size,
            "ply_equivalent_bytes": ply_size(n, t.cfg.sh_degree),
            "storage_bytes": storage_table(path),
            "psnr_before_postprocess": before["psnr"],
            "mask_pruned": int(t.compact.pruned),
            "codebook_usage": usage,
            "codebook_kind": t.compact.cfg.rvq.vq.kind,
        }
        return Written(render, n, extra)
