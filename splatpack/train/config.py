"""Typed training configuration and its YAML presets.

Defaults are the 3DGS recipe (Kerbl et al. 2023, ``arguments/__init__.py``) as gsplat's
``simple_trainer`` uses it. Iteration-based schedules are given for the paper's 30k steps
and scaled to the run's ``steps`` (see :meth:`TrainConfig.scaled_schedule`), so a short CPU
run densifies over the same *fraction* of training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from splatpack.errors import SplatpackError


@dataclass
class DensifyConfig:
    """Adaptive density control (3DGS §5.2) — gsplat's ``DefaultStrategy`` parameters."""

    refine_start: int = 500
    refine_stop: int = 15_000
    refine_every: int = 100
    reset_every: int = 3_000
    grow_grad2d: float = 0.0002
    grow_scale3d: float = 0.01
    prune_opa: float = 0.005
    prune_scale3d: float = 0.1
    absgrad: bool = False
    max_gaussians: int = 0  # 0 = no cap; else no growth once the count reaches it (the round that
    # crosses it may overshoot; CPU budgets)


@dataclass
class LearningRates:
    """Adam learning rates per parameter group (3DGS values; ``means`` × scene scale)."""

    means: float = 1.6e-4
    means_final: float = 1.6e-6
    quats: float = 1e-3
    scales: float = 5e-3
    opacities: float = 5e-2
    sh0: float = 2.5e-3
    shN: float = 2.5e-3 / 20


@dataclass
class TrainConfig:
    steps: int = 30_000
    sh_degree: int = 3
    sh_degree_interval: int = 1000
    ssim_lambda: float = 0.2
    lr: LearningRates = field(default_factory=LearningRates)
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    scale_schedule: bool = True  # scale densify/SH schedules from 30k steps to `steps`
    init_opacity: float = 0.1
    init_scale: float = 1.0
    init_random_points: int = 100_000  # used when the capture has no SfM points
    init_extent: float = 1.3  # random init inside [-e, e]^3 × scene radius / 1.1 (Blender: ±1.3)
    random_background: bool = False
    antialiased: bool = False
    downscale: int = 1
    test_every: int = 8
    checkpoint_every: int = 1000
    log_every: int = 50
    eval_lpips: bool = True
    seed: int = 0
    backend: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0  # CPU threads for the kernels and torch; 0 = all cores

    def scaled_schedule(self) -> "TrainConfig":
        """Copy with iteration schedules rescaled from the paper's 30k steps to ``steps``."""
        if not self.scale_schedule or self.steps == 30_000:
            return self
        f = self.steps / 30_000
        d = self.densify
        dens = dataclasses.replace(
            d,
            refine_start=max(1, round(d.refine_start * f)),
            refine_stop=round(d.refine_stop * f),
            refine_every=max(10, round(d.refine_every * f)),
            reset_every=max(100, round(d.reset_every * f)),
        )
        return dataclasses.replace(
            self, densify=dens, sh_degree_interval=max(1, round(self.sh_degree_interval * f)), scale_schedule=False
        )


def _merge(cls, obj, data: dict[str, Any], source: str):
    """Return a copy of dataclass ``obj`` with ``data`` applied (nested dicts recurse)."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in data.items():
        if key not in known:
            raise SplatpackError(f"unknown setting '{key}' (known: {', '.join(sorted(known))})", source)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise SplatpackError(f"setting '{key}' must be a mapping", source)
            changes[key] = _merge(type(current), current, value, source)
        else:
            changes[key] = value
    return dataclasses.replace(obj, **changes)


def apply_overrides(cfg: TrainConfig, data: dict[str, Any], source: str = "config") -> TrainConfig:
    return _merge(TrainConfig, cfg, data or {}, source)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SplatpackError("file does not exist", path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SplatpackError(f"invalid YAML: {str(e).splitlines()[0]}", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SplatpackError("expected a mapping at the top level", path)
    return data


def load_config(path: str | Path | None, base: TrainConfig | None = None) -> TrainConfig:
    """Apply a YAML preset (e.g. ``configs/default.yaml``) on top of ``base``."""
    cfg = base or TrainConfig()
    if path is None:
        return cfg
    return apply_overrides(cfg, read_yaml(path), str(path))


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
