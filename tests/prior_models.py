"""Helpers of the bit-plane prior tests (``tests/codecs/test_prior_*.py``,
``tests/apps/test_*_prior.py``, ``tests/generative/test_{bitmodel,entropy}.py``): a tiny untrained
model shipped under a name in a temporary weights folder, and torch on one thread."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch

from splatpack.codecs.prior import codec as prior_codec
from splatpack.codecs.prior import modelfile
from splatpack.codecs.prior.planes import DEFAULT_LAYOUT, plane_ranks
from splatpack.generative.bitmodel import BitModel, BitModelConfig


def tiny_model(seed: int = 0) -> BitModel:
    """An untrained bit model of the default layout, 8 channels, one block."""
    torch.manual_seed(seed)
    return BitModel(BitModelConfig(ranks=plane_ranks(DEFAULT_LAYOUT), hidden=8, blocks=1))


def ship_tiny_model(folder: Path, monkeypatch, name: str = "tiny-v1", seed: int = 0) -> Path:
    """Save :func:`tiny_model` as ``folder/name.pt`` and make ``folder`` the shipped weights."""
    path = folder / f"{name}.pt"
    modelfile.save_bit_model(tiny_model(seed), DEFAULT_LAYOUT, {"grid_codec": "quality default"}, path)
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
