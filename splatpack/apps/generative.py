"""Files around the generative models (:mod:`splatpack.generative`): a folder of objects to train
on, their licences, the model card written beside a model's weights, the model shipped with the
package, and a contact sheet of rendered samples."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from splatpack.core import GaussianSet, SplatpackError
from splatpack.formats import load_scene
from splatpack.generative.model import SHIPPED_MODEL, GenerativeModel
from splatpack.render import render_image
from splatpack.render.camera import look_at

__all__ = [
    "SCENE_SUFFIXES",
    "contact_sheet",
    "load_model",
    "load_objects",
    "model_card",
    "read_licences",
]

#: files of a folder taken as objects (a SOG folder, one holding meta.json, is taken too)
SCENE_SUFFIXES = (".ply", ".splat", ".spz", ".sog", ".spk", ".npz")


def load_objects(folder: Path) -> tuple[list[str], list[GaussianSet]]:
    """(names, objects) of every scene file (and SOG folder) in ``folder``, sorted by name; a
    name is the file name without its extension."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SplatpackError("not a folder of splats", folder)
    paths = sorted(
        p
        for p in folder.iterdir()
        if (p.is_file() and p.suffix.lower() in SCENE_SUFFIXES) or (p.is_dir() and (p / "meta.json").is_file())
    )
    if not paths:
        raise SplatpackError(f"folder holds no splats ({', '.join(SCENE_SUFFIXES)} or SOG folders)", folder)
    names = [p.name.split(".")[0] if p.is_file() else p.name for p in paths]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SplatpackError(f"two files are named {dup!r}: give each object one file", folder)
    return names, [load_scene(p) for p in paths]


def read_licences(folder: Path) -> dict[str, str]:
    """Object name → licence from ``folder/LICENSES.txt`` (lines ``name licence…``), empty
    when there is none."""
    path = Path(folder) / "LICENSES.txt"
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        name, _, licence = line.strip().partition(" ")
        if name and licence:
            out[name] = licence.strip()
    return out


def model_card(model: GenerativeModel, path: Path) -> str:
    """The Markdown model card of ``model`` (whose weights are at ``path``)."""
    info = model.info
    licences = info.get("licences", {})
    rows = lambda names: "\n".join(f"| {n} | {licences.get(n, 'unknown')} |" for n in names)
    cfg = model.config.to_dict()
    return f"""# {path.stem}: a Binary Latent Diffusion model of splat objects

Weights: `{path.name}` ({path.stat().st_size:,} bytes), SHA-256 `{model.content_hash}`.
A binary autoencoder over PLAS-sorted {cfg["layout"]["height"]}×{cfg["layout"]["width"]} attribute grids
and a Bernoulli diffusion prior over its latents (Wang et al., "Binary Latent Diffusion", CVPR 2023){
        ", with the prior's masked form that codes the latents" if model.coder is not None else ""
    };
see `splatpack.generative`.

Trained with `{info.get("command", "?")}` on `{info.get("data", "?")}`:
{info.get("bae_steps", "?")} autoencoder steps, then {info.get("prior_steps", "?")} prior steps{
        f", then {info['coder_steps']} latent-coder steps" if info.get("coder_steps") else ""
    },
{info.get("augmentations", "?")} augmented grids per object, seed {info.get("seed", "?")},
in {info.get("train_seconds", 0) / 60:.1f} min on {info.get("device", "?")}.

## Training objects ({len(info.get("train", []))})

| object | licence |
|---|---|
{rows(info.get("train", []))}

## Held-out objects ({len(info.get("held_out", []))}; fixed by `held_out_split`, never trained on)

| object | licence |
|---|---|
{rows(info.get("held_out", []))}

Licences as listed in the data folder's `LICENSES.txt`{
        ": " + info["licence_source"] if info.get("licence_source") else ""
    }.

## Configuration

```json
{json.dumps(cfg, indent=2)}
```
"""


def load_model(path: Path | None) -> GenerativeModel:
    """The model at ``path``, or the shipped one."""
    path = SHIPPED_MODEL if path is None else Path(path)
    if path == SHIPPED_MODEL and not path.is_file():
        raise SplatpackError("the shipped model is missing (train one with `splatpack prior train`)", path)
    return GenerativeModel.load(path)


def _view(gs: GaussianSet, size: int, up: Sequence[float]) -> torch.Tensor:
    """One render [size, size, 3] of an object in its frame (radius ≈ 1), from 30° above."""
    up_v = np.asarray(up, dtype=np.float64)
    side = np.cross(up_v, [1.0, 0.0, 0.0] if abs(up_v[0]) < 0.9 else [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    eye = 4.0 * (math.cos(math.radians(30)) * side + math.sin(math.radians(30)) * up_v)
    c2w = look_at(eye, np.zeros(3), up_v)
    f = 0.5 * size / math.tan(math.radians(20))
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    return render_image(gs, c2w, K, size, size, background=(1.0, 1.0, 1.0), backend="cpu")


def contact_sheet(objects: Sequence[GaussianSet], up: Sequence[float], size: int = 192) -> torch.Tensor:
    """A grid of renders [rows·size, cols·size, 3] of ``objects`` (object frames), up to 4 across."""
    cols = min(4, len(objects))
    rows = math.ceil(len(objects) / cols)
    sheet = torch.ones(rows * size, cols * size, 3)
    for i, gs in enumerate(objects):
        r, c = divmod(i, cols)
        sheet[r * size : (r + 1) * size, c * size : (c + 1) * size] = _view(gs, size, up).cpu()
    return sheet
