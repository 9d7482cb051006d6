"""Training: :class:`Trainer` (the 3DGS loop, :mod:`.trainer`) with the methods' hooks
(:mod:`.compact`, :mod:`.grid`), checkpoints, evaluation and the output of each preset
(:mod:`.outputs`); :class:`TrainConfig` and the densifier."""

from splatpack.train.config import DensifyConfig, LearningRates, TrainConfig, apply_overrides, load_config
from splatpack.train.trainer import StepCallback, Trainer, photometric_loss

__all__ = [
    "DensifyConfig",
    "LearningRates",
    "StepCallback",
    "TrainConfig",
    "Trainer",
    "apply_overrides",
    "load_config",
    "photometric_loss",
]
