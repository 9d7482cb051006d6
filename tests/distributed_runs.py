"""What the distributed tests run in each rank: module-level, so that ``torch.multiprocessing``'s
spawned processes can import it by name (``tests/`` is on their path, as on the parent's)."""

from __future__ import annotations

from typing import Any

from splatpack.captures import load_capture
from splatpack.train import TrainConfig, Trainer, apply_overrides
from splatpack.train.distributed import ranks_from_environment


def tiny_config(**overrides: Any) -> TrainConfig:
    """40 steps with refinements at steps 10, 20 and 30 and an opacity reset at 20."""
    base = TrainConfig(steps=40, init_random_points=1500, eval_lpips=False, scale_schedule=False, log_every=10)
    densify = {"refine_start": 5, "refine_every": 10, "refine_stop": 35, "reset_every": 20}
    return apply_overrides(base, {"densify": densify, "checkpoint_every": 0, **overrides})


def train_rank(capture_root: str, out_dir: str, overrides: dict, stop_at: int | None = None, resume: bool = False):
    """Train the tiny capture as the rank the environment names."""
    trainer = Trainer(load_capture(capture_root), tiny_config(**overrides), out_dir, ranks=ranks_from_environment())
    trainer.train(resume=resume, stop_at=stop_at)
