"""Coding-model files of mode b: plain tensors and a JSON header, read with
``torch.load(weights_only=True)`` (nothing in a model file runs code).

Two kinds (:data:`MODEL_FORMATS`): a bit-plane model (:mod:`splatpack.generative.bitmodel`,
``mode`` "bitplanes") and a value model (:mod:`splatpack.generative.valuemodel`, ``mode``
"values"). A file holds ``format``, ``version`` (:data:`MODEL_VERSION`), ``header`` (JSON: the
model's config, the channel layout of :mod:`.planes` and the model card), ``state`` (parameter
name → float32 tensor) and ``sha256``,
the :func:`~splatpack.core.digest.state_digest` of the rest; a ``.spk`` file coded with the
model carries its name, digest and version, and a reader refuses a file whose model differs.
Shipped models lie in ``splatpack/generative/weights/`` (:func:`shipped_model_path`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from splatpack.codecs.prior.planes import PlaneChannel, layout_from_dicts
from splatpack.core.atomic import atomic_write
from splatpack.core.digest import state_digest
from splatpack.core.errors import SplatpackError
from splatpack.generative import bitmodel, valuemodel
from splatpack.generative.bitmodel import BitModel, BitModelConfig
from splatpack.generative.valuemodel import ValueModel, ValueModelConfig

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_FORMATS",
    "MODEL_VERSION",
    "LoadedCodingModel",
    "load_coding_model",
    "save_coding_model",
    "shipped_model_path",
]

#: file format → (mode, model class, config class, its float64 coding copy)
MODEL_FORMATS = {
    "splatpack-bitplanes": ("bitplanes", BitModel, BitModelConfig, bitmodel.coding_copy),
    "splatpack-values": ("values", ValueModel, ValueModelConfig, valuemodel.coding_copy),
}
MODEL_VERSION = 1
DEFAULT_MODEL = "values-v1"
WEIGHTS = Path(__file__).resolve().parents[2] / "generative" / "weights"


@dataclass
class LoadedCodingModel:
    """A model ready to code (float64 eval copy), its layout, card, name, digest, version and
    ``mode`` ("bitplanes" or "values")."""

    model: BitModel | ValueModel
    layout: tuple[PlaneChannel, ...]
    card: dict
    name: str
    sha256: str
    version: int
    mode: str


def shipped_model_path(name: str = DEFAULT_MODEL) -> Path:
    """The path of a model shipped with the package (``name`` without ``.pt``)."""
    return WEIGHTS / f"{name}.pt"


def _payload(model: BitModel | ValueModel, layout: tuple[PlaneChannel, ...], card: dict) -> dict:
    header = {"config": model.cfg.to_dict(), "layout": [ch.to_dict() for ch in layout], "card": card}
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    fmt = next(f for f, (_, cls, _, _) in MODEL_FORMATS.items() if isinstance(model, cls))
    return {"format": fmt, "version": MODEL_VERSION, "header": json.dumps(header), "state": state}


def save_coding_model(
    model: BitModel | ValueModel, layout: tuple[PlaneChannel, ...], card: dict, path: str | Path
) -> str:
    """Write the model file atomically; returns its SHA-256 digest."""
    payload = _payload(model, layout, card)
    payload["sha256"] = state_digest(payload)
    with atomic_write(Path(path), "wb") as f:
        torch.save(payload, f)
    return payload["sha256"]


def load_coding_model(path: str | Path) -> LoadedCodingModel:
    """Read a model file (``weights_only=True``); a missing, foreign, damaged or mismatching
    file raises :class:`SplatpackError` naming ``path``."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SplatpackError("no such coding-model file", path) from None
    except Exception as exc:
        raise SplatpackError(f"not a coding-model file ({type(exc).__name__})", path) from None
    if not isinstance(payload, dict) or payload.get("format") not in MODEL_FORMATS:
        raise SplatpackError("not a coding-model file", path)
    if payload.get("version") != MODEL_VERSION:
        raise SplatpackError(f"coding-model version {payload.get('version')!r}, expected {MODEL_VERSION}", path)
    stored = payload.pop("sha256", None)
    if stored != state_digest(payload):
        raise SplatpackError("coding-model file is damaged (checksum mismatch)", path)
    mode, model_cls, config_cls, coding_copy = MODEL_FORMATS[payload["format"]]
    try:
        header = json.loads(payload["header"])
        cfg = config_cls.from_dict(header["config"])
        layout = layout_from_dicts(header["layout"])
        model = model_cls(cfg)
        model.load_state_dict(payload["state"])
    except Exception as exc:
        raise SplatpackError(f"malformed coding model ({type(exc).__name__}: {exc})", path) from None
    matches = (
        sum(ch.bits for ch in layout) == cfg.planes
        if mode == "bitplanes"
        else tuple(ch.bits for ch in layout) == cfg.bits
    )
    if not matches:
        raise SplatpackError("coding-model layout does not match the model", path)
    return LoadedCodingModel(coding_copy(model), layout, header["card"], path.stem, stored, MODEL_VERSION, mode)
