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

from splatpack.codecs.compact import CompactCodecConfig
from splatpack.codecs.grid import GridCodecConfig
from splatpack.compress.colour_field import ColourFieldConfig
from splatpack.compress.masking import MaskingConfig
from splatpack.compress.rvq import ResidualVQConfig
from splatpack.core.errors import SplatpackError


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
    max_gaussians: int = 0  # 0 = no cap; else growth stops at it (only the largest gradients grow
    # when the room is short; CPU budgets)
    budget_ramp: bool = False  # the cap grows linearly over the refinement window (budgeted densification)


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
class ColourTraining:
    """The colour field's optimiser schedule (Compact-3DGS: Adam, lr 1e-2, linear warm-up from
    1 % over 100 steps, ×0.33 at each milestone; objects 1e-3 and one milestone at 25k)."""

    lr: float = 1e-2
    warmup_steps: int = 100
    milestones: list[int] = field(default_factory=lambda: [5_000, 15_000, 25_000])
    gamma: float = 0.33
    model: ColourFieldConfig = field(default_factory=ColourFieldConfig)


def _sh_rest_vq() -> ResidualVQConfig:
    return ResidualVQConfig(num_stages=2, codebook_size=256)


@dataclass
class GeometryVQ:
    """Residual VQ for the last ``steps`` iterations (Compact-3DGS: 1000) of the ``attributes``
    named: ``scales`` and ``quats`` (the paper's geometry R-VQ, codebooks ``vq``; the compact
    ``.spk`` stores them as indices) and/or ``shN``, the SH rest (codebooks ``sh_vq``; only with
    per-Gaussian SH written as a grid scene, ``configs/full.yaml``, whose codec then stores the
    trained codebooks and the labels as an image per stage)."""

    steps: int = 1_000
    attributes: list[str] = field(default_factory=lambda: ["scales", "quats"])
    sh_vq: ResidualVQConfig = field(default_factory=_sh_rest_vq)
    scale_space: Literal["log", "linear"] = "log"  # the paper quantises linear scales; log keeps
    # small Gaussians small (relative error)
    lr: float = 1e-3  # SimVQ's linear layer
    vq: ResidualVQConfig = field(default_factory=ResidualVQConfig)


@dataclass
class CompactConfig:
    """Compact-3DGS training (Lee et al. 2024): masking + colour field + R-VQ, saved as ``.spk``.

    ``object`` holds the settings that change for object captures (Blender/NeRF-synthetic,
    DTU: the paper README's second preset); ``kind: auto`` picks it from the capture format.
    """

    enabled: bool = False
    kind: Literal["auto", "object", "scene"] = "auto"
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    colour_field: bool = True  # False: keep per-Gaussian SH (masking/R-VQ only)
    colour: ColourTraining = field(default_factory=ColourTraining)
    rvq: GeometryVQ = field(default_factory=GeometryVQ)
    codec: CompactCodecConfig = field(default_factory=CompactCodecConfig)
    max_gaussians: int = 0  # > 0: the densification cap while training compact (replaces
    # densify.max_gaussians, which scene files set for the vanilla budget)
    object: dict[str, Any] = field(default_factory=dict)

    def resolved(self, object_capture: bool) -> CompactConfig:
        """This config with ``object`` applied when the capture is (or is set to be) an object."""
        is_object = self.kind == "object" or (self.kind == "auto" and object_capture)
        return _merge(CompactConfig, self, self.object, "compact.object") if is_object and self.object else self


def _sog_sort_weights() -> dict[str, float]:
    return {"means": 1.0, "sh0": 1.0, "scales": 1.0}


def _sog_smoothness() -> dict[str, float]:
    return {"means": 1.0, "scales": 1.0, "quats": 1.0, "opacities": 1.0, "sh0": 1.0, "shN": 0.5}


@dataclass
class GridTraining:
    """Self-Organizing Gaussians (Morgenstern et al., ECCV 2024): the Gaussians are kept sorted
    into a 2D grid by PLAS and a smoothness loss pulls every attribute grid towards its blurred
    copy, so the final planes compress as images.

    SOG sorts after every densification step; a sort on CPU is slow, so ``start`` (paper
    iterations, scaled with ``steps``) sets the first sort — by default when densification
    stops — and the grid is re-sorted every ``resort_every`` steps after it (0: never).
    Gaussians pruned by the mask leave empty cells until the next sort. With
    ``smoothness_weight`` 0 training never sorts: the codec sorts the final Gaussians once.

    ``quality`` and ``codec`` set the grid codec of the scene written at the end: ``codec`` is
    a mapping of :class:`~splatpack.codecs.grid.GridCodecConfig` fields (YAML) applied over the
    quality level's, e.g. ``{sh_mode: rvq}`` (the SH rest as the trained residual codebooks);
    :meth:`codec_config` combines them."""

    enabled: bool = False
    start: int = 15_000
    resort_every: int = 5_000
    sort_weights: dict[str, float] = field(default_factory=_sog_sort_weights)  # SOG: xyz, colour DC, scale
    smoothness: dict[str, float] = field(default_factory=_sog_smoothness)  # λ per attribute group
    smoothness_weight: float = 1.0  # scales every λ
    kernel_size: int = 5
    sigma: float = 3.0
    quality: int | str = 6  # the grid codec's quality level (splatpack.codecs.grid: 0..10 or "sog")
    codec: dict[str, Any] = field(default_factory=dict)  # grid codec overrides: GridCodecConfig fields
    quantisation_aware: bool = False  # with compact (full preset): for the last rvq.steps, render the
    # attributes as the codec will decode them (straight-through), so training absorbs the coding loss

    def codec_config(self) -> GridCodecConfig:
        """The grid codec's settings: ``quality`` with the ``codec`` overrides over it (on
        training's PLAS arrangement curve-key positions are coded as an image, as on any grid
        not in their key order; without one the codec sorts them into it)."""
        return GridCodecConfig.from_quality(self.quality, **self.codec)


@dataclass
class TrainConfig:
    steps: int = 30_000
    batch_size: int = 1  # cameras per step (per rank when distributed); the loss is their mean
    sh_degree: int = 3
    sh_degree_interval: int = 1000
    ssim_lambda: float = 0.2
    lr: LearningRates = field(default_factory=LearningRates)
    # the positions' rate decays exponentially to lr.means_final (3DGS) over the "steps", or over
    # the run's "progress": its steps or its time budget, whichever ends it first (``compress
    # --refine``: a run the clock ends still settles at the final rate)
    lr_decay: Literal["steps", "progress"] = "steps"
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    scale_schedule: bool = True  # scale densify/SH schedules from 30k steps to `steps`
    init_opacity: float = 0.1
    init_scale: float = 1.0
    init_random_points: int = 100_000  # used when the capture has no SfM points
    init_mode: Literal["frustum", "box"] = "frustum"  # without SfM points: random points in the training
    # cameras' common view (carved by alpha/masks, coloured from the photos; splatpack.train.init), or
    # in a box (3DGS)
    init_view_fraction: float = 0.8  # frustum init: a point must be seen by this fraction of the cameras
    init_extent: float = 1.3  # box init: inside [-e, e]^3 × scene radius / 1.1 (Blender: ±1.3)
    init_from: str = ""  # start from these splats (any format splatpack reads) instead of the SfM points
    random_background: bool = False
    mask_mode: Literal["alpha", "loss", "off"] = "alpha"  # object masks (masks/ beside images/, nerfstudio
    # mask_path): "alpha" composites the photo on the background through the mask (as RGBA images
    # are), "loss" leaves the photo as it is and counts only the pixels inside the mask in the loss,
    # "off" ignores mask files (an image's own alpha is always composited)
    antialiased: bool = False
    downscale: int = 1
    test_every: int = 8
    checkpoint_every: int = 1000
    log_every: int = 50
    eval_lpips: bool = True
    seed: int = 0
    backend: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0  # CPU threads for the kernels and torch; 0 = all cores
    compact: CompactConfig = field(default_factory=CompactConfig)
    grid: GridTraining = field(default_factory=GridTraining)

    def scaled_schedule(self) -> TrainConfig:
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
        c = self.compact
        compact = dataclasses.replace(
            c,
            # Adam moves a logit by ≈ lr per step: a shortened run needs a proportionally larger
            # mask lr for masks to be able to switch off at all
            masking=dataclasses.replace(
                c.masking, prune_every=max(50, round(c.masking.prune_every * f)), lr=c.masking.lr / f
            ),
            colour=dataclasses.replace(c.colour, milestones=[round(m * f) for m in c.colour.milestones]),
            rvq=dataclasses.replace(c.rvq, steps=max(100, round(c.rvq.steps * f))),
        )
        g = self.grid
        grid = dataclasses.replace(g, start=round(g.start * f), resort_every=round(g.resort_every * f))
        return dataclasses.replace(
            self,
            densify=dens,
            sh_degree_interval=max(1, round(self.sh_degree_interval * f)),
            scale_schedule=False,
            compact=compact,
            grid=grid,
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
        elif isinstance(current, dict) and isinstance(value, dict):
            changes[key] = _merge_dicts(current, value)
        else:
            changes[key] = value
    return dataclasses.replace(obj, **changes)


def _merge_dicts(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge_dicts(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


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


#: the method presets shipped in the repository's ``configs/``, by name
PRESETS_DIR = Path(__file__).resolve().parents[2] / "configs"
PRESET_NAMES = ("default", "compact", "sog", "full")


def resolve_preset(config: str | Path) -> Path:
    """A preset file: ``config`` itself when it is a file, else the shipped preset of that name
    (``compact`` → ``configs/compact.yaml``; :data:`PRESET_NAMES`)."""
    p = Path(config)
    if p.is_file() or str(config) not in PRESET_NAMES:
        return p  # a missing file is reported by read_yaml, naming it
    preset = PRESETS_DIR / f"{config}.yaml"
    if not preset.is_file():
        raise SplatpackError(f"the preset '{config}' is not installed here (no {preset})")
    return preset


def load_config(path: str | Path | None, base: TrainConfig | None = None) -> TrainConfig:
    """Apply a YAML preset (e.g. ``configs/default.yaml``) on top of ``base``."""
    cfg = base or TrainConfig()
    if path is None:
        return cfg
    return apply_overrides(cfg, read_yaml(path), str(path))


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
