"""Scene descriptions: what ``splatpack train PATH`` accepts.

``PATH`` is one of

* ``default`` — the built-in synthetic scene (:mod:`splatpack.captures.synthetic`), generated
  on first use into the cache; it needs no downloaded data;
* a scene file (``scenes/*.yaml``)::

      name: lego
      data: ../../shared/scenes/lego     # relative to the scene file; or builtin:default
      format: blender                    # optional: detected from the folder
      downscale: 4
      config: ../configs/default.yaml    # optional preset, relative to the scene file
      overrides: {steps: 7000}           # optional TrainConfig settings

* a capture folder (Blender, nerfstudio, LLFF or COLMAP; the format is detected).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from splatpack.captures import Capture, load_capture
from splatpack.captures.synthetic import DEFAULT_SCENE_NAME, ensure_default_scene
from splatpack.core.errors import SplatpackError
from splatpack.train.config import TrainConfig, apply_overrides, load_config, read_yaml, resolve_preset

BUILTIN = "builtin:"


@dataclass
class SceneSpec:
    name: str
    data: Path
    format: str | None = None
    downscale: int | None = None
    config: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def _builtin(name: str) -> Path:
    if name != DEFAULT_SCENE_NAME:
        raise SplatpackError(f"unknown built-in scene {name!r} (available: {DEFAULT_SCENE_NAME})")
    return ensure_default_scene()


# the built-in default: a short run that finishes in a few minutes on two cores
DEFAULT_OVERRIDES: dict[str, Any] = {"steps": 3000, "init_random_points": 20_000, "sh_degree": 3}


def resolve_scene(path: str | Path) -> SceneSpec:
    text = str(path)
    if text in ("default", BUILTIN + "default"):
        return SceneSpec(name="default", data=_builtin("default"), format="blender", overrides=dict(DEFAULT_OVERRIDES))
    p = Path(path)
    if p.suffix.lower() not in (".yaml", ".yml"):
        if not p.exists():
            raise SplatpackError("path does not exist (expected a capture folder, a scene .yaml or 'default')", p)
        return SceneSpec(name=p.resolve().name, data=p)
    d = read_yaml(p)
    unknown = set(d) - {"name", "data", "format", "downscale", "config", "overrides", "description"}
    if unknown:
        raise SplatpackError(f"unknown scene keys: {', '.join(sorted(unknown))}", p)
    if "data" not in d:
        raise SplatpackError("scene file has no 'data' entry", p)
    data = str(d["data"])
    if data.startswith(BUILTIN):
        root = _builtin(data[len(BUILTIN) :])
        overrides = dict(DEFAULT_OVERRIDES)
    else:
        root = (p.parent / data).resolve()
        overrides = {}
        if not root.exists():
            raise SplatpackError(f"scene data folder {root} does not exist", p)
    overrides.update(d.get("overrides") or {})
    cfg = d.get("config")
    return SceneSpec(
        name=str(d.get("name", p.stem)),
        data=root,
        format=d.get("format"),
        downscale=d.get("downscale"),
        config=(p.parent / cfg).resolve() if cfg else None,
        overrides=overrides,
    )


def scene_config(
    path: str | Path,
    preset: str | Path | None = None,
    settings: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[SceneSpec, TrainConfig, Capture]:
    """(scene spec, TrainConfig, Capture) of what ``splatpack train PATH`` trains: the scene's base
    preset, then the method ``preset`` (a YAML file or a shipped preset's name), then the scene
    file's overrides, then ``extra`` (nested settings) and ``settings`` (flat settings such as
    ``steps`` and ``downscale``; None values are ignored)."""
    spec = resolve_scene(path)
    cfg = TrainConfig()
    if spec.config:
        cfg = load_config(spec.config, cfg)
    if preset:  # a method preset over the scene's base preset; the scene's own settings win
        cfg = load_config(resolve_preset(preset), cfg)
    cfg = apply_overrides(cfg, spec.overrides, str(path))
    if extra:
        cfg = apply_overrides(cfg, extra, "command line")
    settings = dict(settings or {})
    if settings.get("downscale") is None:
        settings["downscale"] = spec.downscale or None
    cfg = apply_overrides(cfg, {k: v for k, v in settings.items() if v is not None}, "command line")
    capture = load_capture(spec.data, spec.format, downscale=cfg.downscale, test_every=cfg.test_every)
    capture.name = spec.name
    return spec, cfg, capture
