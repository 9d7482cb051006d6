"""Lossless coding of an integer image [H, W, C] under a value model (:mod:`.valuemodel`), with
asymmetric numeral systems (Duda, arXiv:1311.2540) through constriction's stack ANS coder and
its quantised Laplace (Bamler, arXiv:2201.01741), as :mod:`.entropy` codes bit-planes.

The ideal code length is the cross-entropy H = −Σ min(log2 1/p(v | ctx), 24) of
:func:`~.valuemodel.laplace_bits`, capped where the coder's 24-bit probabilities are.
Channels of up to :data:`TABLE_BITS` bits are coded under that very distribution, as a table
(:func:`~.valuemodel.laplace_table`, constriction's ``Categorical``). Wider channels use
constriction's ``QuantizedLaplace``, which puts the tails beyond the alphabet on its end symbols
instead of renormalising: the two agree unless μ is outside the alphabet or b spans it. The
stream differs from H by that, the coder's quantisation of the probabilities and its final words.

Order: wavefront by wavefront (:func:`~.valuemodel.wavefronts`), within a wavefront channel by
channel, within a channel the cells in the wavefront's order. Channels ``known`` to the decoder
beforehand (the caller codes them some other way) are skipped and serve as context.
Stream: ``words`` = the ANS coder's u32 words, little-endian.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import constriction
import numpy as np
import torch

from splatpack.core.errors import SplatpackError
from splatpack.generative.valuemodel import (
    PAD_LEFT,
    PAD_TOP,
    ValueModel,
    cell_context,
    channel_parameters,
    laplace_bits,
    laplace_table,
    padded,
    wavefronts,
)

__all__ = ["TABLE_BITS", "CodedValues", "decode_values", "encode_values"]

#: constriction's probabilities are multiples of 2^−PRECISION: no value costs more than PRECISION bits
PRECISION = 24
#: channels this narrow are coded from a probability table; wider ones from the quantised Laplace
TABLE_BITS = 8


@dataclass
class CodedValues:
    """The ANS ``words`` and the cross-entropy in bits of each channel (0 for known channels)."""

    words: bytes
    channel_bits: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def coded_bits(self) -> float:
        return float(self.channel_bits.sum())


@contextmanager
def _one_thread() -> Iterator[None]:
    """The coder's batches are one wavefront: more threads only add overhead, and one thread on
    both sides keeps the encoder's and decoder's arithmetic the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _alphabets(model: ValueModel) -> list:
    return [
        constriction.stream.model.Categorical(perfect=False)
        if b <= TABLE_BITS
        else constriction.stream.model.QuantizedLaplace(0, (1 << b) - 1)
        for b in model.cfg.bits
    ]


def _parameters(model: ValueModel, c: int, mu: torch.Tensor, b: torch.Tensor) -> tuple[np.ndarray, ...]:
    """The per-value arguments of channel ``c``'s alphabet: the table, or (μ, b)."""
    if model.cfg.bits[c] <= TABLE_BITS:
        return (laplace_table(mu, b, model.cfg.bits[c]).numpy(),)
    return mu.numpy(), b.numpy()


def _image_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, np.float64)).permute(2, 0, 1)[None]


def _known(model: ValueModel, known: np.ndarray | None) -> np.ndarray:
    known = np.zeros(model.cfg.channels, bool) if known is None else np.asarray(known, bool)
    if known.shape != (model.cfg.channels,):
        raise ValueError(f"the model codes {model.cfg.channels} channels")
    return known


def encode_values(model: ValueModel, image: np.ndarray, known: np.ndarray | None = None) -> CodedValues:
    """Code ``image`` [H, W, C] (integers in [0, 2^bits[c])) under ``model`` (its float64
    :func:`~.valuemodel.coding_copy`), except the ``known`` [C] channels."""
    h, w, chans = image.shape
    known = _known(model, known)
    top = np.array([(1 << b) - 1 for b in model.cfg.bits])
    if chans != model.cfg.channels or (image < 0).any() or (image.reshape(-1, chans) > top).any():
        raise ValueError("image does not fit the model's channels and bits")
    values, inside = padded(_image_tensor(image))
    chunks = []
    with torch.no_grad(), _one_thread():
        for ys, xs in wavefronts(h, w):
            anchor, features = cell_context(model, values, inside, ys, xs)
            cell = values[:, :, ys + PAD_TOP, xs + PAD_LEFT].transpose(1, 2)
            for c in np.flatnonzero(~known).tolist():
                mu, b = channel_parameters(model, c, anchor, features, cell)
                chunks.append((c, cell[0, :, c], mu[0], b[0]))
        channel_bits = np.zeros(chans)
        for c in np.flatnonzero(~known).tolist():
            v, mu, b = (torch.cat([k[i] for k in chunks if k[0] == c]) for i in (1, 2, 3))
            channel_bits[c] = float(laplace_bits(v, mu, b, model.cfg.bits[c]).clamp(max=PRECISION).sum())
    alphabets = _alphabets(model)
    coder = constriction.stream.stack.AnsCoder()
    for c, v, mu, b in reversed(chunks):
        coder.encode_reverse(v.numpy().astype(np.int32), alphabets[c], *_parameters(model, c, mu, b))
    words = np.asarray(coder.get_compressed(), np.uint32).astype("<u4").tobytes()
    return CodedValues(words, channel_bits)


def decode_values(
    model: ValueModel,
    words: bytes,
    height: int,
    width: int,
    known_image: np.ndarray | None = None,
    known: np.ndarray | None = None,
) -> np.ndarray:
    """Inverse of :func:`encode_values`: the image [H, W, C] (int64), the ``known`` channels taken
    from ``known_image``. A stream that does not decode exactly raises :class:`SplatpackError`."""
    known = _known(model, known)
    chans = model.cfg.channels
    image = np.zeros((height, width, chans), np.float64)
    if known.any():
        image[..., known] = np.asarray(known_image)[..., known]
    if len(words) % 4:
        raise SplatpackError("value-model stream: its length is not a whole number of words")
    data = np.frombuffer(words, "<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(data) if data.size else constriction.stream.stack.AnsCoder()
    except Exception as exc:  # constriction refuses e.g. a trailing zero word
        raise SplatpackError(f"value-model stream: invalid compressed data ({exc})") from None
    alphabets = _alphabets(model)
    values, inside = padded(_image_tensor(image))
    with torch.no_grad(), _one_thread():
        for ys, xs in wavefronts(height, width):
            anchor, features = cell_context(model, values, inside, ys, xs)
            cell = values[:, :, ys + PAD_TOP, xs + PAD_LEFT].transpose(1, 2).clone()
            for c in np.flatnonzero(~known).tolist():
                mu, b = channel_parameters(model, c, anchor, features, cell)
                try:
                    v = coder.decode(alphabets[c], *_parameters(model, c, mu[0], b[0]))
                except Exception as exc:
                    raise SplatpackError(f"value-model stream: cannot decode ({exc})") from None
                v = torch.from_numpy(np.asarray(v, np.float64))
                cell[0, :, c] = v
                values[0, c, ys + PAD_TOP, xs + PAD_LEFT] = v
    if not coder.is_empty():
        raise SplatpackError("value-model stream: data left over after the last value (corrupt)")
    return values[0, :, PAD_TOP:, PAD_LEFT : PAD_LEFT + width].permute(1, 2, 0).numpy().astype(np.int64)
