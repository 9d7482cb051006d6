"""Helpers of the learned-coding tests (``tests/codecs/test_prior_*.py``,
``tests/apps/test_*_prior.py``, ``tests/generative/test_{bitmodel,entropy,valuemodel}.py``): tiny
untrained coding models (bit-plane or value) shipped under a name in a temporary weights folder,
and torch on one thread."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch

from splatpack.codecs.prior import codec as prior_codec
from splatpack.codecs.prior import modelfile
from splatpack.codecs.prior.planes import DEFAULT_LAYOUT, plane_ranks
from splatpack.generative.bitmodel import BitModel, BitModelConfig
from splatpack.generative.valuemodel import ValueModel, ValueModelConfig

#: mean absolute MED residuals of the default layout's channels on objects10k (rounded)
RESIDUAL_SCALES = (180.0, 230.0, 190.0, 3.5, 3.5, 3.9, 0.5, 0.5, 0.5, 15.0, 14.0, 12.0, 0.5, 0.5)


def tiny_model(seed: int = 0, mode: str = "bitplanes") -> BitModel | ValueModel:
    """An untrained coding model of the default layout: a bit model (8 channels, one block) or
    a value model (8 hidden units)."""
    torch.manual_seed(seed)
    if mode == "values":
        return ValueModel(ValueModelConfig(tuple(ch.bits for ch in DEFAULT_LAYOUT), RESIDUAL_SCALES, hidden=8))
    return BitModel(BitModelConfig(ranks=plane_ranks(DEFAULT_LAYOUT), hidden=8, blocks=1))


def ship_tiny_model(folder: Path, monkeypatch, name: str = "tiny-v1", seed: int = 0, mode: str = "bitplanes") -> Path:
    """Save :func:`tiny_model` as ``folder/name.pt`` and make ``folder`` the shipped weights."""
    path = folder / f"{name}.pt"
    modelfile.save_coding_model(tiny_model(seed, mode), DEFAULT_LAYOUT, {"grid_codec": "quality default"}, path)
    monkeypatch.setattr(modelfile, "WEIGHTS", folder)
    prior_codec._load.cache_clear()
    return path


@contextmanager
def one_torch_thread():
    """Small convolutions: one thread is fastest on a shared machine (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
