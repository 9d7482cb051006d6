"""Bit-plane model files: plain tensors and a JSON header, read with
``torch.load(weights_only=True)`` (nothing in a model file runs code).

A file holds ``format`` (:data:`MODEL_FORMAT`), ``version`` (:data:`MODEL_VERSION`), ``header``
(JSON: the :class:`~splatpack.generative.bitmodel.BitModelConfig`, the plane layout of
:mod:`.planes` and the model card), ``state`` (parameter name → float32 tensor) and ``sha256``,
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
from splatpack.generative.bitmodel import BitModel, BitModelConfig, coding_copy

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "LoadedBitModel",
    "load_bit_model",
    "save_bit_model",
    "shipped_model_path",
]

MODEL_FORMAT = "splatpack-bitplanes"
MODEL_VERSION = 1
DEFAULT_MODEL = "bitplanes-v1"
WEIGHTS = Path(__file__).resolve().parents[2] / "generative" / "weights"


@dataclass
class LoadedBitModel:
    """A model ready to code (float64 eval copy), its plane layout, card, name, digest and version."""

    model: BitModel
    layout: tuple[PlaneChannel, ...]
    card: dict
    name: str
    sha256: str
    version: int


def shipped_model_path(name: str = DEFAULT_MODEL) -> Path:
    """The path of a model shipped with the package (``name`` without ``.pt``)."""
    return WEIGHTS / f"{name}.pt"


def _payload(model: BitModel, layout: tuple[PlaneChannel, ...], card: dict) -> dict:
    header = {"config": model.cfg.to_dict(), "layout": [ch.to_dict() for ch in layout], "card": card}
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    return {"format": MODEL_FORMAT, "version": MODEL_VERSION, "header": json.dumps(header), "state": state}


def save_bit_model(model: BitModel, layout: tuple[PlaneChannel, ...], card: dict, path: str | Path) -> str:
    """Write the model file atomically; returns its SHA-256 digest."""
    payload = _payload(model, layout, card)
    payload["sha256"] = state_digest(payload)
    with atomic_write(Path(path), "wb") as f:
        torch.save(payload, f)
    return payload["sha256"]


def load_bit_model(path: str | Path) -> LoadedBitModel:
    """Read a model file (``weights_only=True``); a missing, foreign, damaged or mismatching
    file raises :class:`SplatpackError` naming ``path``."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SplatpackError("no such bit-plane model file", path) from None
    except Exception as exc:
        raise SplatpackError(f"not a bit-plane model file ({type(exc).__name__})", path) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise SplatpackError("not a bit-plane model file", path)
    if payload.get("version") != MODEL_VERSION:
        raise SplatpackError(f"bit-plane model version {payload.get('version')!r}, expected {MODEL_VERSION}", path)
    stored = payload.pop("sha256", None)
    if stored != state_digest(payload):
        raise SplatpackError("bit-plane model file is damaged (checksum mismatch)", path)
    try:
        header = json.loads(payload["header"])
        cfg = BitModelConfig.from_dict(header["config"])
        layout = layout_from_dicts(header["layout"])
        model = BitModel(cfg)
        model.load_state_dict(payload["state"])
    except Exception as exc:
        raise SplatpackError(f"malformed bit-plane model ({type(exc).__name__}: {exc})", path) from None
    if sum(ch.bits for ch in layout) != cfg.planes:
        raise SplatpackError("bit-plane model layout does not match its planes", path)
    return LoadedBitModel(coding_copy(model), layout, header["card"], path.stem, stored, MODEL_VERSION)
