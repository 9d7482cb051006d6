"""The value model and its coder (:mod:`splatpack.generative.valuemodel`, :mod:`.valuecoding`):
the wavefront order is causal, the coder round-trips every value exactly (with and without
known channels) within a small overhead of the cross-entropy, a damaged stream is refused, and
training lowers the code length."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from prior_models import RESIDUAL_SCALES, one_torch_thread, tiny_model

from splatpack.codecs.prior.training import ValueTrainConfig, train_value_model
from splatpack.core.errors import SplatpackError
from splatpack.generative.valuecoding import decode_values, encode_values
from splatpack.generative.valuemodel import (
    OFFSETS,
    SLOPE,
    ValueModel,
    ValueModelConfig,
    cell_context,
    channel_parameters,
    coding_copy,
    laplace_bits,
    laplace_table,
    padded,
    residual_scales,
    value_loss,
    wavefronts,
)

BITS = (13, 13, 13, 7, 7, 7, 7, 7, 7, 7, 7, 7, 2, 8)


@pytest.fixture(autouse=True)
def _threads():
    with one_torch_thread():
        yield


def smooth_image(h: int = 12, w: int = 10, seed: int = 0) -> np.ndarray:
    """Integer channels that vary smoothly over the grid (as a sorted grid does), plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for b in BITS:
        top = (1 << b) - 1
        v = top * (0.5 + 0.3 * np.sin(0.3 * y + rng.uniform(0, 3)) * np.cos(0.2 * x)) + rng.normal(
            0, 0.02 * top, (h, w)
        )
        out.append(np.clip(np.round(v), 0, top))
    return np.stack(out, -1).astype(np.int64)


def test_wavefronts_visit_every_cell_once_after_its_whole_window():
    h, w = 7, 11
    order = np.full((h, w), -1)
    for t, (ys, xs) in enumerate(wavefronts(h, w)):
        assert (order[ys, xs] == -1).all()
        order[ys, xs] = t
        assert (SLOPE * ys + xs == t).all()
    assert (order >= 0).all()
    assert all(SLOPE * dy + dx < 0 for dy, dx in OFFSETS)


def test_a_cells_parameters_do_not_depend_on_later_wavefronts():
    model = coding_copy(tiny_model(0, "values"))
    img = torch.from_numpy(smooth_image()).permute(2, 0, 1)[None].double()
    later = img.clone()
    y0, x0 = 5, 4
    ys, xs = torch.meshgrid(torch.arange(12), torch.arange(10), indexing="ij")
    later[:, :, SLOPE * ys + xs >= SLOPE * y0 + x0] = 0  # every later cell, and the cell itself
    cell = torch.tensor([y0]), torch.tensor([x0])
    for c in range(len(BITS)):
        a = channel_parameters(model, c, *cell_context(model, *padded(img), *cell), img[:, :, y0, x0][:, None])
        own = img[:, :, y0, x0][:, None].clone()
        own[..., c:] = 0  # channels from c on are not known yet
        b = channel_parameters(model, c, *cell_context(model, *padded(later), *cell), own)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("known_channels", [(), (3, 4, 5), tuple(range(6, 14))])
def test_values_round_trip_exactly_near_the_cross_entropy(known_channels):
    model = coding_copy(tiny_model(0, "values"))
    img = smooth_image()
    known = np.zeros(len(BITS), bool)
    known[list(known_channels)] = True
    coded = encode_values(model, img, known)
    assert (coded.channel_bits[known] == 0).all() and (coded.channel_bits[~known] > 0).all()
    assert len(coded.words) <= coded.coded_bits / 8 * 1.01 + 16
    given = np.where(known, img, 0)
    assert np.array_equal(decode_values(model, coded.words, 12, 10, given, known), img)


def test_laplace_bits_are_the_normalised_table_even_far_in_the_tails():
    g = torch.Generator().manual_seed(0)
    v = torch.randint(0, 128, (2000,), generator=g).double()
    mu = torch.cat([v[:1000] + torch.randn(1000, generator=g, dtype=torch.float64) * 3, torch.full((1000,), -40.0)])
    b = torch.exp(torch.randn(2000, generator=g, dtype=torch.float64) * 3)
    bits = laplace_bits(v, mu, b, 7)
    table = laplace_table(mu, b, 7)
    p = table[torch.arange(2000), v.long()] / table.sum(1)
    ok = p > 1e-200
    assert torch.allclose(bits[ok], -torch.log2(p[ok]), rtol=1e-9, atol=1e-9)
    assert torch.isfinite(bits).all() and bits[~ok].min() > 600  # no floor: a far value is as unlikely as it is
    # b spanning the alphabet is uniform over it; μ below it is the tail renormalised, not piled on 0
    assert laplace_bits(torch.tensor([5.0]), torch.tensor([60.0]), torch.tensor([1e9]), 7).item() == pytest.approx(
        7, abs=1e-4
    )
    tail = laplace_bits(torch.tensor([0.0, 1.0]), torch.tensor([-50.0]), torch.tensor([1.0]), 7)
    assert tail[1] - tail[0] == pytest.approx(1 / np.log(2), rel=1e-6)


def test_narrow_channels_are_coded_under_the_models_own_distribution():
    """A scale wider than the alphabet means uniform: a 7-bit channel then costs 7 bits a value
    (a quantised Laplace would pile the tails on the end symbols and spend ~18)."""
    model = tiny_model(0, "values")
    with torch.no_grad():
        last = model.nets[9][-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 12.0]))
    model = coding_copy(model)
    img = smooth_image()
    known = np.ones(len(BITS), bool)
    known[9] = False
    coded = encode_values(model, img, known)
    assert coded.coded_bits == pytest.approx(12 * 10 * 7, rel=1e-3)
    assert len(coded.words) <= 12 * 10 * 7 / 8 + 8
    assert np.array_equal(decode_values(model, coded.words, 12, 10, img, known), img)


def test_a_damaged_stream_is_refused():
    model = coding_copy(tiny_model(0, "values"))
    img = smooth_image()
    words = encode_values(model, img).words
    with pytest.raises(SplatpackError):
        decode_values(model, words[:-4], 12, 10)
    with pytest.raises(SplatpackError):
        decode_values(model, words + b"\x01\x00\x00\x00", 12, 10)
    with pytest.raises(SplatpackError, match="whole number of words"):
        decode_values(model, words[:-1], 12, 10)


def test_values_outside_the_models_bits_are_refused():
    model = coding_copy(tiny_model(0, "values"))
    img = smooth_image()
    img[0, 0, 12] = 4  # a 2-bit channel
    with pytest.raises(ValueError, match="does not fit"):
        encode_values(model, img)


def test_residual_scales_are_the_mean_absolute_med_residual():
    ramp = torch.zeros(2, 6, 8, dtype=torch.float64)
    ramp[0] = torch.arange(8.0) * 4  # MED predicts a ramp exactly below the first row
    ramp[1] = 7.0
    s = residual_scales([ramp])
    assert s[1] == 0.5  # a constant channel
    assert s[0] == pytest.approx(7 * 4 / 48, abs=1e-4)  # the first row: W predicts, 4 off
    noisy = ramp.clone()
    noisy[0] += torch.from_numpy(np.random.default_rng(0).choice([-3.0, 3.0], (6, 8)))
    assert residual_scales([noisy])[0] > s[0]


def test_training_lowers_the_code_length():
    torch.manual_seed(0)
    model = ValueModel(ValueModelConfig(BITS, RESIDUAL_SCALES, hidden=16))
    images = [smooth_image(16, 16, seed) for seed in range(4)]
    x = torch.from_numpy(images[0].transpose(2, 0, 1).astype(np.float32))[None]
    before = float(value_loss(model, x).detach())
    losses = train_value_model(model, images, ValueTrainConfig(steps=60, images=2, cells=128, lr=1e-2))
    assert len(losses) == 60 and not model.training
    after = float(value_loss(model, x).detach())
    assert after < 0.9 * before
    coded = encode_values(coding_copy(model), images[0])
    assert len(coded.words) * 8 < 0.9 * sum(BITS) * 16 * 16  # smaller than the raw bits
