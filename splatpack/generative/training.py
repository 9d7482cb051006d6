"""Training a :class:`~splatpack.generative.model.GenerativeModel` on a list of objects, in Binary
Latent Diffusion's two stages (Wang et al., CVPR 2023, §3): the binary autoencoder on augmented
attribute grids (:func:`~splatpack.generative.grids.augmented_grid`), then the Bernoulli
diffusion prior on the BAE's thresholded latents of the same grids; and, where the model has
one, a third stage: the prior's masked form (the latent coder, :func:`~.bitmodel.masked_loss`)
on the same latents, its batches and masks drawn from generators reseeded at the stage's start.

Seeded end to end (grid augmentation, batches, noise), with a checkpoint every
``checkpoint_every`` steps from which :func:`train_model` continues bit for bit; the grids are
recomputed from the objects and the seed on resume (they are deterministic).

Data-parallel over ``torch.distributed`` (``ranks``, see :mod:`splatpack.core.distributed`): the
ranks compute disjoint shares of the grids and sum them; each step every rank draws the same
global batch of ``batch`` grids from a generator seeded alike and takes its slice (rank r: items
r, r + N, …); the gradients are averaged with one all-reduce, so every rank takes the Adam step one
process would take on the whole batch and the weights stay identical (compared by digest at the
end). The autoencoder's Bernoulli samples and the diffusion noise come from a per-rank generator,
so an N-process run matches one process in distribution (its loss curve), not bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from splatpack.core import GaussianSet, SplatpackError
from splatpack.core import distributed as jobs
from splatpack.core.atomic import atomic_write
from splatpack.core.digest import state_digest
from splatpack.core.distributed import SINGLE, Ranks
from splatpack.generative.bae import reconstruction_loss
from splatpack.generative.bitmodel import masked_loss
from splatpack.generative.diffusion import denoising_loss
from splatpack.generative.grids import ChannelStats, augmented_grid
from splatpack.generative.model import GenerativeModel, ModelConfig

__all__ = ["TrainingConfig", "make_grids", "train_model"]

#: on_step(stage, step, steps, loss): stage is "bae", "prior" or "coder"
StepCallback = Callable[[str, int, int, float], None]


@dataclass(frozen=True)
class TrainingConfig:
    """``augmentations`` grids per object; ``bae_steps``, ``prior_steps`` then (for a model with
    a latent coder) ``coder_steps`` Adam steps of ``batch`` grids at learning rates ``bae_lr``,
    ``prior_lr`` and ``coder_lr`` (cosine decay to a tenth); ``seed`` for everything; a
    checkpoint every ``checkpoint_every`` steps."""

    model: ModelConfig = field(default_factory=ModelConfig)
    augmentations: int = 8
    bae_steps: int = 2000
    prior_steps: int = 2000
    batch: int = 8
    bae_lr: float = 1e-3
    prior_lr: float = 5e-4
    coder_steps: int = 2000
    coder_lr: float = 2e-3
    seed: int = 0
    checkpoint_every: int = 100

    def validate(self, ranks: Ranks = SINGLE) -> TrainingConfig:
        self.model.validate()
        if self.augmentations < 1 or self.batch < 1 or min(self.bae_steps, self.prior_steps, self.coder_steps) < 0:
            raise ValueError(f"invalid training config {asdict(self)}")
        if self.batch % ranks.world_size:
            raise ValueError(f"the batch of {self.batch} grids does not split over {ranks.world_size} processes")
        return self


def make_grids(
    objects: list[GaussianSet],
    config: TrainingConfig,
    on_grid: Callable[[int, int], None] | None = None,
    ranks: Ranks = SINGLE,
) -> torch.Tensor:
    """[len(objects)·augmentations, C, H, W]: each object's augmented grids, seeded by
    (``seed``, object, augmentation); over ranks, rank r computes grids r, r + N, … and the
    shares are summed (every rank ends with all of them)."""
    layout = config.model.layout
    total = len(objects) * config.augmentations
    grids = torch.zeros(total, layout.channels, layout.height, layout.width)
    for k, j in enumerate(range(ranks.rank, total, ranks.world_size)):
        grids[j] = augmented_grid(objects[j // config.augmentations], layout, seed=config.seed * 1_000_003 + j)
        if on_grid:
            on_grid(min(total, (k + 1) * ranks.world_size), total)  # all ranks' progress, as this one's
    if ranks.distributed:
        torch.distributed.all_reduce(grids)  # x + 0 = x exactly: the same grids as one process
    return grids


def _lr(base: float, step: int, steps: int) -> float:
    """Cosine decay from ``base`` to ``base``/10 with a linear warm-up over the first 2 %."""
    warm = max(1, steps // 50)
    if step < warm:
        return base * (step + 1) / warm
    u = (step - warm) / max(1, steps - warm)
    return base * (0.1 + 0.45 * (1 + torch.cos(torch.tensor(u * torch.pi)).item()))


def _save(path: Path, state: dict[str, Any]) -> None:
    state = dict(state)
    state["sha256"] = state_digest(state)
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def _load(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SplatpackError(f"cannot resume from checkpoint: {type(e).__name__}: {e}", path) from None
    stored = state.pop("sha256", None) if isinstance(state, dict) else None
    if not isinstance(stored, str) or state_digest(state) != stored:
        raise SplatpackError("cannot resume from checkpoint: its contents do not match their SHA-256", path)
    return state


def train_model(
    objects: list[GaussianSet],
    config: TrainingConfig,
    checkpoint: Path | None = None,
    resume: bool = False,
    info: dict[str, Any] | None = None,
    on_step: StepCallback | None = None,
    on_grid: Callable[[int, int], None] | None = None,
    ranks: Ranks = SINGLE,
) -> GenerativeModel:
    """Train a model on ``objects`` (world frame); checkpoints go to ``checkpoint`` and, with
    ``resume``, training continues from it when it exists (same config required). As one of
    ``ranks`` (a joined process group): rank 0 writes the checkpoints, ``on_step`` gets the
    loss averaged over the ranks, and every rank returns the same model."""
    config.validate(ranks)
    if not objects:
        raise ValueError("no objects to train on")
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    grids = make_grids(objects, config, on_grid, ranks)
    stats = ChannelStats.fit(grids)
    data = stats.standardise(grids)
    model = GenerativeModel.create(config.model, stats, info)
    bae_opt = torch.optim.Adam(model.bae.parameters(), lr=config.bae_lr)
    prior_opt = torch.optim.Adam(model.prior.parameters(), lr=config.prior_lr)
    coder_opt = torch.optim.Adam(model.coder.parameters(), lr=config.coder_lr) if model.coder is not None else None
    gen = torch.Generator().manual_seed(config.seed)  # batches: alike on every rank
    noise = gen if not ranks.distributed else torch.Generator().manual_seed(config.seed + 7919 * (ranks.rank + 1))
    job = {"objects": len(objects)} | ({"processes": ranks.world_size} if ranks.distributed else {})
    cfg_json = json.dumps({**asdict(config), **job}, sort_keys=True, default=list)
    stage, step = "bae", 0
    if resume and checkpoint is not None and checkpoint.is_file():
        state = _load(checkpoint)
        if state["config"] != cfg_json:
            raise SplatpackError("cannot resume: the checkpoint was written with other settings or data", checkpoint)
        model.bae.load_state_dict(state["bae"])
        model.prior.load_state_dict(state["prior"])
        bae_opt.load_state_dict(state["bae_opt"])
        prior_opt.load_state_dict(state["prior_opt"])
        if coder_opt is not None:
            model.coder.load_state_dict(state["coder"])
            coder_opt.load_state_dict(state["coder_opt"])
        gen.set_state(state["generator"])
        if ranks.distributed:
            noise.set_state(state["noise_generators"][ranks.rank])
        stage, step = state["stage"], int(state["step"])

    def save_checkpoint() -> None:
        """Rank 0 writes (every rank calls: the ranks' noise generators are gathered)."""
        if checkpoint is None:
            return
        noise_states = []
        if ranks.distributed:
            noise_states = [torch.empty_like(noise.get_state()) for _ in range(ranks.world_size)]
            torch.distributed.all_gather(noise_states, noise.get_state())
        if ranks.is_main:
            _save(
                checkpoint,
                {
                    "config": cfg_json,
                    "stage": stage,
                    "step": step,
                    "bae": model.bae.state_dict(),
                    "prior": model.prior.state_dict(),
                    "bae_opt": bae_opt.state_dict(),
                    "prior_opt": prior_opt.state_dict(),
                    **({"coder": model.coder.state_dict(), "coder_opt": coder_opt.state_dict()} if coder_opt else {}),
                    "generator": gen.get_state(),
                    "noise_generators": noise_states,
                },
            )

    def run_stage(name: str, steps: int, base_lr: float, opt: torch.optim.Optimizer, items, loss_of) -> None:
        """Adam steps on random batches of ``items`` from ``step`` to ``steps``."""
        nonlocal step
        while step < steps:
            for group in opt.param_groups:
                group["lr"] = _lr(base_lr, step, steps)
            idx = torch.randint(len(items), (config.batch,), generator=gen)[ranks.rank :: ranks.world_size]
            opt.zero_grad()
            loss = loss_of(items[idx])
            loss.backward()
            if ranks.distributed:
                jobs.average_gradients(opt.param_groups[0]["params"], ranks.world_size)
                loss = loss.detach().clone()
                torch.distributed.all_reduce(loss)
                loss /= ranks.world_size
            opt.step()
            step += 1
            if on_step:
                on_step(name, step, steps, loss.item())
            if step % config.checkpoint_every == 0:
                save_checkpoint()

    if stage == "bae":
        model.bae.train()
        bae_loss = lambda batch: reconstruction_loss(model.bae(batch, generator=noise)[0], batch)
        run_stage("bae", config.bae_steps, config.bae_lr, bae_opt, data, bae_loss)
        stage, step = "prior", 0
        save_checkpoint()
    model.bae.eval()
    with torch.no_grad():
        latents = torch.cat([model.bae.encode(data[i : i + 32]) for i in range(0, len(data), 32)])
    if stage == "prior":
        model.prior.train()
        prior_loss = lambda batch: denoising_loss(model.prior, batch, config.model.schedule, noise)
        run_stage("prior", config.prior_steps, config.prior_lr, prior_opt, latents, prior_loss)
        stage, step = "coder", 0
        gen.manual_seed(config.seed + 1)
        noise.manual_seed(config.seed + 1 + (7919 * (ranks.rank + 1) if ranks.distributed else 0))
        save_checkpoint()
    model.prior.eval()
    if model.coder is not None:
        model.coder.train()
        coder_loss = lambda batch: masked_loss(model.coder, batch, noise)
        run_stage("coder", config.coder_steps, config.coder_lr, coder_opt, latents, coder_loss)
    if ranks.distributed and not jobs.all_equal(jobs.parameter_digest(model.tensors())):
        raise SplatpackError("the training processes ended with different weights")
    return model.eval()
