"""Helpers of the generative training tests (``tests/generative/test_model.py``,
``tests/generative/test_training_distributed.py``): a tiny model configuration, two structured
objects and a short training configuration."""

from __future__ import annotations

import dataclasses

import torch
from format_scenes import random_set

from splatpack.generative.bae import BAEConfig
from splatpack.generative.diffusion import BernoulliSchedule, DenoiserConfig
from splatpack.generative.grids import GridLayout
from splatpack.generative.model import ModelConfig
from splatpack.generative.training import TrainingConfig


def tiny_model_config() -> ModelConfig:
    return ModelConfig.for_layout(
        GridLayout(height=8, width=8),
        BAEConfig(latent_bits=16, width=8, downsample=1),
        DenoiserConfig(dim=16, layers=1, heads=2),
        BernoulliSchedule(steps=8),
    )


def tiny_objects() -> list:
    """Two structured objects: ellipsoid shells of two aspect ratios, every attribute a function
    of the position."""
    out = []
    for i in range(2):
        gs = random_set(100, seed=i)
        d = torch.nn.functional.normalize(gs.means, dim=1) * torch.tensor([1.0 + i, 1.0, 0.5])
        q = torch.nn.functional.normalize(torch.cat([torch.ones(100, 1), d], 1), dim=1)
        out.append(dataclasses.replace(gs, means=d, quats=q, opacities=d[:, 1], sh0=d[:, None], scales=d.abs() - 3))
    return out


def tiny_training(steps: int, batch: int = 4) -> TrainingConfig:
    return TrainingConfig(
        model=tiny_model_config(),
        augmentations=2,
        bae_steps=steps,
        prior_steps=steps,
        coder_steps=steps,
        batch=batch,
        bae_lr=1e-2,
        prior_lr=5e-3,
        checkpoint_every=5,
    )
