"""Training data and training of the coding models of mode b: scenes → the grid codec's quantised
images (:mod:`.planes`) → either bit-planes for :func:`splatpack.generative.bitmodel.masked_loss`
on random crops (:func:`train_bit_model`), or one integer image per scene for
:func:`splatpack.generative.valuemodel.value_loss` on random cells (:func:`train_value_model`);
Adam (Kingma & Ba, ICLR 2015) with a cosine learning-rate decay.

Augmentation: each object turned about the up axis by a random angle before coding and sorted
with its own PLAS seed, so one object gives many grids (:func:`scene_images`)."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from splatpack.codecs.grid import GridCodecConfig, encode_grid_scene
from splatpack.codecs.prior.planes import PlaneChannel, grid_images, layout_image, to_planes
from splatpack.core.errors import SplatpackError
from splatpack.generative.bitmodel import BitModel, masked_loss
from splatpack.generative.grids import rotate_about_axis
from splatpack.generative.valuemodel import ValueModel, value_loss

__all__ = [
    "BitTrainConfig",
    "ValueTrainConfig",
    "grid_config",
    "scene_images",
    "scene_planes",
    "scene_values",
    "train_bit_model",
    "train_value_model",
]

#: the grid codec settings of mode b's training data and files (quality "default")
QUALITY = "default"


def grid_config(image_codec: str | None = None, seed: int = 0) -> GridCodecConfig:
    """The grid codec's quality "default" (``image_codec`` "ans" for fast training data), every
    value whole in its image (no low bits beside it: the models code whole values) on the PLAS
    grid the models were trained on, with the SH rest as its 5-bit coefficient planes (the
    level's until the ladder took a low-rank basis for it)."""
    extra = {"image_codec": image_codec} if image_codec else {}
    whole = {name: {"low_bits": 0} for name in ("means", "quats")}
    sh_rest = {"sh_mode": "grid", "shN": {"bits": 5}}
    return GridCodecConfig.from_quality(QUALITY, seed=seed, order="plas", **whole, **sh_rest, **extra)


def scene_images(gs, layout: tuple[PlaneChannel, ...], angle: float = 0.0, seed: int = 0) -> dict[str, np.ndarray]:
    """The layout's integer images of ``gs`` turned by ``angle`` about −y (through its mean) and
    coded by the grid codec (PLAS seed ``seed``, order-0 sections for speed: the same values)."""
    if angle:
        centre = gs.means.mean(0)
        turned = rotate_about_axis(dataclasses.replace(gs, means=gs.means - centre), (0.0, -1.0, 0.0), angle)
        gs = dataclasses.replace(turned, means=turned.means + centre)
    sections, meta = encode_grid_scene(gs, grid_config("ans", seed))
    images = grid_images(sections, meta, layout)
    if images is None:
        raise SplatpackError("scene does not match the layout")
    return images


def scene_planes(gs, layout: tuple[PlaneChannel, ...], angle: float = 0.0, seed: int = 0) -> np.ndarray:
    """Bits [K, H, W] of :func:`scene_images`."""
    return to_planes(scene_images(gs, layout, angle, seed), layout)


def scene_values(gs, layout: tuple[PlaneChannel, ...], angle: float = 0.0, seed: int = 0) -> np.ndarray:
    """One integer image [H, W, K] of :func:`scene_images` (the layout's channels in order)."""
    return layout_image(scene_images(gs, layout, angle, seed), layout)


@dataclass(frozen=True)
class BitTrainConfig:
    steps: int = 1500
    batch: int = 8
    crop: int = 48
    lr: float = 2e-3
    seed: int = 0


def _crops(planes: list[np.ndarray], cfg: BitTrainConfig, g: torch.Generator) -> torch.Tensor:
    out = []
    for _ in range(cfg.batch):
        p = planes[int(torch.randint(len(planes), (), generator=g))]
        _, h, w = p.shape
        c = min(cfg.crop, h, w) // 2 * 2  # even offsets keep every cell's checkerboard phase
        y = int(torch.randint((h - c) // 2 + 1, (), generator=g)) * 2
        x = int(torch.randint((w - c) // 2 + 1, (), generator=g)) * 2
        out.append(torch.from_numpy(p[:, y : y + c, x : x + c].astype(np.float32)))
    return torch.stack(out)


def train_bit_model(
    model: BitModel,
    planes: list[np.ndarray],
    cfg: BitTrainConfig,
    log: Callable[[int, float, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place on random crops of ``planes`` (each [K, H, W]); the loss per
    step (bits per coded bit)."""
    g = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    losses = []
    start = time.time()
    model.train()
    for step in range(cfg.steps):
        loss = masked_loss(model, _crops(planes, cfg, g), g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log is not None:
            log(step, losses[-1], time.time() - start)
    model.eval()
    return losses


@dataclass(frozen=True)
class ValueTrainConfig:
    """Per step ``images`` random images, ``cells`` random cells of each."""

    steps: int = 3000
    images: int = 4
    cells: int = 1024
    lr: float = 2e-3
    seed: int = 0


def train_value_model(
    model: ValueModel,
    images: list[np.ndarray],
    cfg: ValueTrainConfig,
    log: Callable[[int, float, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place on random cells of ``images`` (each [H, W, C] integers), each
    cell in its image's full context; the loss per step (bits per value)."""
    g = torch.Generator().manual_seed(cfg.seed)
    tensors = [torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1), np.float32))[None] for im in images]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    losses = []
    start = time.time()
    model.train()
    for step in range(cfg.steps):
        loss = torch.zeros(())
        for _ in range(cfg.images):
            img = tensors[int(torch.randint(len(tensors), (), generator=g))]
            _, _, h, w = img.shape
            cells = torch.randint(h * w, (cfg.cells,), generator=g)
            loss = loss + value_loss(model, img, cells // w, cells % w) / cfg.images
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log is not None:
            log(step, losses[-1], time.time() - start)
    model.eval()
    return losses
