"""Training: :class:`Trainer` (3DGS recipe), :class:`TrainConfig` and the densifier."""

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
