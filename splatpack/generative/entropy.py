"""Lossless coding of binary planes [K, H, W] under a bit model (:mod:`.bitmodel`), group by
group of its decoding order, with asymmetric numeral systems (Duda, arXiv:1311.2540) through
constriction's stack ANS coder (Bamler, arXiv:2201.01741), as :mod:`splatpack.spk.arrays.ans`.

The ideal code length of bits b under probabilities p is the cross-entropy
H = −Σ log2 p(b) (Shannon; ANS codes within a small overhead of it). Each bit is coded with
the quantised p(b = 1 | groups before its own) of :func:`~.bitmodel.group_probabilities`, so
the decoder, evaluating the model on what it has decoded so far, sees the same numbers.

Fallbacks, chosen by the encoder and stored by the caller:

* **per plane** (:func:`encode_planes`): a plane the model codes worse than an order-0 Bernoulli
  of the plane's own frequency (p̂ = ones / n, quantised; e.g. a near-random low bit) is coded
  with p̂ instead (``static``: plane → quantised p̂);
* **per unit** (:func:`choose_fallback`): a set of planes (an attribute's channels) whose model
  code is no smaller than the caller's own coder of the same values is left to that coder; those
  planes are ``known`` to both sides before the model's stream starts (extra context).

Stream: ``words`` = the ANS coder's u32 words, little-endian; the symbols are the bits of each
group in decoding order, within a group in row-major [K, H, W] order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import constriction
import numpy as np
import torch

from splatpack.core.errors import SplatpackError
from splatpack.generative.bitmodel import PROB_ONE, BitModel, group_probabilities

__all__ = [
    "CodedPlanes",
    "bernoulli_bits",
    "choose_fallback",
    "decode_planes",
    "encode_planes",
    "static_probability",
]

#: what storing one plane's order-0 probability costs, in bits (charged when choosing it): a
#: JSON entry such as ``"104": 65535, `` in a file's meta
STATIC_COST_BITS = 96


@dataclass
class CodedPlanes:
    """One coded set of planes: the ANS ``words``, the ``static`` planes (plane → quantised p̂),
    and the cross-entropies in bits: ``model_bits`` [K] of every coded plane under the model,
    ``coded_bits`` of what was coded (model or p̂ per plane)."""

    words: bytes
    static: dict[int, int] = field(default_factory=dict)
    model_bits: np.ndarray = field(default_factory=lambda: np.zeros(0))
    coded_bits: float = 0.0


def bernoulli_bits(bits: np.ndarray, p1: np.ndarray | int) -> float:
    """−Σ log2 p(b) of bits under quantised p(b = 1) = p1 / 2^16 (broadcast)."""
    p1 = np.asarray(p1, np.float64) / PROB_ONE
    p = np.where(np.asarray(bits) != 0, p1, 1.0 - p1)
    return float(-np.log2(p).sum())


def static_probability(plane: np.ndarray) -> int:
    """The quantised order-0 p̂(b = 1) of a plane's bits, in [1, 2^16 − 1]."""
    n = max(plane.size, 1)
    return int(min(max(round(int(np.count_nonzero(plane)) * PROB_ONE / n), 1), PROB_ONE - 1))


def _plane_of(k: int, h: int, w: int) -> torch.Tensor:
    return torch.arange(k)[:, None, None].expand(k, h, w)


def _model_probabilities(model: BitModel, bits: torch.Tensor, known: torch.Tensor) -> np.ndarray:
    """[K, H, W] the quantised model p(b = 1 | groups before) of every bit not ``known`` (0 there)."""
    k, h, w = bits.shape
    probs = np.zeros((k, h, w), np.int64)
    known = known.clone()
    for group in model.cfg.order.groups(h, w, skip=known[:, 0, 0].numpy()):
        probs[group.numpy()] = group_probabilities(model, bits, known, group)
        known |= group
    return probs


def _known_mask(known_planes: np.ndarray, h: int, w: int) -> torch.Tensor:
    return torch.as_tensor(np.asarray(known_planes, bool))[:, None, None].expand(-1, h, w).clone()


def encode_planes(model: BitModel, bits: np.ndarray, known_planes: np.ndarray | None = None) -> CodedPlanes:
    """Code bits [K, H, W] (0/1) under ``model`` (its float64 :func:`~.bitmodel.coding_copy`),
    except the ``known_planes`` [K] the decoder will already have; per plane, the model or the
    plane's order-0 p̂, whichever is smaller (see the module docstring)."""
    bits = np.asarray(bits, np.uint8)
    k, h, w = bits.shape
    if k != model.cfg.planes:
        raise ValueError(f"the model codes {model.cfg.planes} planes, not {k}")
    known_planes = np.zeros(k, bool) if known_planes is None else np.asarray(known_planes, bool)
    state = torch.from_numpy(bits.astype(np.float64))
    probs = _model_probabilities(model, state, _known_mask(known_planes, h, w))
    model_bits = np.array([0.0 if known_planes[j] else bernoulli_bits(bits[j], probs[j]) for j in range(k)])
    static: dict[int, int] = {}
    for j in np.flatnonzero(~known_planes).tolist():
        p = static_probability(bits[j])
        if bernoulli_bits(bits[j], p) + STATIC_COST_BITS < model_bits[j]:
            static[j] = p
            probs[j] = p
    symbols, p1 = [], []
    for group in model.cfg.order.groups(h, w, skip=known_planes):
        g = group.numpy()
        symbols.append(bits[g])
        p1.append(probs[g])
    symbols_all = np.concatenate([np.zeros(0, np.uint8), *symbols]).astype(np.int32)
    p_all = np.concatenate([np.zeros(0, np.int64), *p1])
    coder = constriction.stream.stack.AnsCoder()
    if symbols_all.size:
        coder.encode_reverse(symbols_all, constriction.stream.model.Bernoulli(perfect=False), p_all / PROB_ONE)
    words = np.asarray(coder.get_compressed(), np.uint32).astype("<u4").tobytes()
    return CodedPlanes(words, static, model_bits, bernoulli_bits(symbols_all, p_all))


def decode_planes(
    model: BitModel,
    words: bytes,
    height: int,
    width: int,
    known_bits: np.ndarray | None = None,
    known_planes: np.ndarray | None = None,
    static: Mapping[int, int] | None = None,
) -> np.ndarray:
    """Inverse of :func:`encode_planes`: bits [K, H, W] uint8, the ``known_planes`` taken from
    ``known_bits`` [K, H, W]. A stream that does not decode exactly raises :class:`SplatpackError`."""
    k = model.cfg.planes
    known_planes = np.zeros(k, bool) if known_planes is None else np.asarray(known_planes, bool)
    static = dict(static or {})
    if any(not 0 <= j < k or known_planes[j] or not 1 <= p < PROB_ONE for j, p in static.items()):
        raise SplatpackError("bit-model stream: invalid static plane table")
    if len(words) % 4:
        raise SplatpackError("bit-model stream: its length is not a whole number of words")
    state = torch.zeros(k, height, width, dtype=torch.float64)
    if known_planes.any():
        state[known_planes] = torch.from_numpy(np.asarray(known_bits)[known_planes].astype(np.float64))
    known = _known_mask(known_planes, height, width)
    data = np.frombuffer(words, "<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(data) if data.size else constriction.stream.stack.AnsCoder()
    except Exception as exc:  # constriction refuses e.g. a trailing zero word
        raise SplatpackError(f"bit-model stream: invalid compressed data ({exc})") from None
    static_p = np.zeros(k, np.int64)
    is_static = np.zeros(k, bool)
    for j, p in static.items():
        static_p[j], is_static[j] = p, True
    plane_of = _plane_of(k, height, width)
    for group in model.cfg.order.groups(height, width, skip=known_planes):
        planes = plane_of[group].numpy()
        if is_static[planes].all():
            p1 = static_p[planes]
        else:
            p1 = group_probabilities(model, state, known, group)
            p1 = np.where(is_static[planes], static_p[planes], p1)
        try:
            b = coder.decode(constriction.stream.model.Bernoulli(perfect=False), p1 / PROB_ONE)
        except Exception as exc:
            raise SplatpackError(f"bit-model stream: cannot decode ({exc})") from None
        state[group] = torch.from_numpy(np.asarray(b, np.float64))
        known |= group
    if not coder.is_empty():
        raise SplatpackError("bit-model stream: data left over after the last group (corrupt)")
    return state.to(torch.uint8).numpy()


def choose_fallback(
    model_bits: np.ndarray, units: Mapping[str, Sequence[int]], unit_bytes: Mapping[str, int]
) -> list[str]:
    """The units (name → its planes) whose model code, ⌈Σ model_bits / 8⌉ bytes, is no smaller
    than ``unit_bytes`` of the caller's own coder: those are left to that coder."""
    return [name for name, planes in units.items() if np.ceil(model_bits[list(planes)].sum() / 8) >= unit_bytes[name]]
