"""What the distributed tests run in each rank: module-level, so that ``torch.multiprocessing``'s
spawned processes can import it by name (``tests/`` is on their path, as on the parent's)."""

from __future__ import annotations

from typing import Any

from splatpack.captures import load_capture
from splatpack.core.distributed import ranks_from_environment
from splatpack.train import TrainConfig, Trainer, apply_overrides


def tiny_config(**overrides: Any) -> TrainConfig:
    """40 steps with refinements at steps 10, 20 and 30 and an opacity reset at 20."""
    base = TrainConfig(steps=40, init_random_points=1500, eval_lpips=False, scale_schedule=False, log_every=10)
    densify = {"refine_start": 5, "refine_every": 10, "refine_stop": 35, "reset_every": 20}
    return apply_overrides(base, {"densify": densify, "checkpoint_every": 0, **overrides})


def train_rank(capture_root: str, out_dir: str, overrides: dict, stop_at: int | None = None, resume: bool = False):
    """Train the tiny capture as the rank the environment names."""
    trainer = Trainer(load_capture(capture_root), tiny_config(**overrides), out_dir, ranks=ranks_from_environment())
    trainer.train(resume=resume, stop_at=stop_at)


def train_generative_rank(out_dir: str, steps: int, batch: int, stop_at: int | None = None, resume: bool = False):
    """Train the tiny generative model as the rank the environment names; each rank saves its
    weights to ``rank{r}.pt`` and rank 0 the averaged losses to ``losses.json``. With ``stop_at``,
    stop (as an interrupted run) after that prior step, just past a checkpoint."""
    import json
    from pathlib import Path

    import torch
    from generative_objects import tiny_objects, tiny_training

    from splatpack.core.distributed import init_process_group
    from splatpack.generative.training import train_model

    class Stop(Exception):
        pass

    ranks = ranks_from_environment()
    init_process_group(ranks, "cpu")
    torch.set_num_threads(1)
    losses: dict[str, list[float]] = {"bae": [], "prior": [], "coder": []}

    def on_step(stage: str, step: int, steps: int, loss: float) -> None:
        losses[stage].append(loss)
        if stop_at is not None and stage == "prior" and step == stop_at:
            raise Stop

    out = Path(out_dir)
    try:
        model = train_model(
            tiny_objects(), tiny_training(steps, batch), out / "ckpt.pt", resume, on_step=on_step, ranks=ranks
        )
    except Stop:
        return
    torch.save(model.tensors(), out / f"rank{ranks.rank}.pt")
    if ranks.is_main:
        (out / "losses.json").write_text(json.dumps(losses))
