"""Quantisation-aware training for grid scenes: the attributes as the grid codec will decode them,
straight-through (Bengio et al. 2013), so that training renders what the file will hold.

Positions go through sign·log1p (unless ``means_transform`` is ``linear``), then every attribute
through the per-channel quantiser of :func:`~splatpack.compress.quantise.quantise_channels` with
its ``cfg`` bits (:func:`~splatpack.compress.quantise.fake_quantise`); the SH rest through
:func:`quantised_sh_rest`.
"""

from __future__ import annotations

import numpy as np
import torch

from splatpack.codecs.grid.config import ALPHA_EPS, GridCodecConfig
from splatpack.compress.quantise import OTHER_COMPONENTS, fake_quantise
from splatpack.core.errors import SplatpackError
from splatpack.core.frames import canonical_frames, positive_w_quats

__all__ = ["quantisation_aware", "quantised_quats", "quantised_sh_rest", "sh_rest_generator"]


def quantisation_aware(
    means, quats, log_scales, opacity_logits, sh0, cfg: GridCodecConfig, drops=None, ranges=None
) -> tuple:
    """The attributes as the grid codec will decode them, straight-through, for quantisation-aware
    training: positions through sign·log1p (or as they are, ``means_transform`` "linear"),
    log-scales, rotations (four components or the smallest three and the recomputed largest),
    opacity logits (or α), colour DC — each with its ``cfg`` bits. ``drops``: per attribute,
    the low bits k [N] each Gaussian drops (:func:`~splatpack.codecs.grid.lowbits.gaussian_drops`, the file's per-Gaussian precision);
    ``ranges``: per attribute, the fixed (lo, hi) it is quantised over
    (:func:`~splatpack.codecs.grid.encode.lattice_ranges`). Lossy JPEG XL distances are not
    modelled. Returns the five, shaped as given."""
    n = means.shape[0]
    if cfg.frames == "best":
        raise SplatpackError(
            "grid codec: quantisation-aware training needs frames 'stored', 'turned' or 'canonical', not 'best'"
        )
    if cfg.frames != "stored":
        quats, log_scales = canonical_frames(quats, log_scales, order_scales=cfg.frames == "canonical")
    drops, ranges = drops or {}, ranges or {}
    if cfg.means_transform == "linear":
        means_q = fake_quantise(means, cfg.means.bits, drops.get("means"), ranges.get("means"))
    else:
        t = torch.sign(means) * torch.log1p(means.abs())
        tq = fake_quantise(t, cfg.means.bits, drops.get("means"))
        means_q = means + (torch.sign(tq) * torch.expm1(tq.abs()) - means).detach()
    scales_q = fake_quantise(log_scales, cfg.scales.bits, drops.get("scales"), ranges.get("scales"))
    quats_q = quantised_quats(quats, cfg, drops.get("quats"), ranges.get("quats"))
    o = opacity_logits.reshape(n, 1)
    if cfg.opacity_space == "logit":
        o_q = fake_quantise(o, cfg.opacities.bits, drops.get("opacities"), ranges.get("opacities"))
    else:
        a = fake_quantise(torch.sigmoid(o), cfg.opacities.bits, drops.get("opacities"), ranges.get("opacities"))
        a = a.clamp(ALPHA_EPS, 1 - ALPHA_EPS)
        o_q = o + (torch.log(a) - torch.log1p(-a) - o).detach()
    sh0_q = fake_quantise(sh0.reshape(n, -1), cfg.sh0.bits, drops.get("sh0"), ranges.get("sh0")).reshape(sh0.shape)
    return means_q, quats_q, scales_q, o_q.reshape(opacity_logits.shape), sh0_q


def quantised_quats(
    quats: torch.Tensor, cfg: GridCodecConfig, drop: torch.Tensor | None = None, value_range=None
) -> torch.Tensor:
    """Unit quaternions with w ≥ 0, quantised as four components or as the smallest three
    (``drop`` [N]: the low bits each drops; ``value_range``: a fixed range, :func:`fake_quantise`)."""
    q = positive_w_quats(quats)
    if cfg.quats_encoding != "smallest-three":
        return fake_quantise(q, cfg.quats.bits, drop, value_range)
    k = q.detach().abs().argmax(1)
    others = torch.as_tensor(OTHER_COMPONENTS, device=q.device)[k]  # [N, 3]
    sign = torch.where(q.gather(1, k[:, None]) < 0, -1.0, 1.0)
    small = fake_quantise(q.gather(1, others) * sign, cfg.quats.bits, drop, value_range)
    largest = torch.sqrt((1 - (small * small).sum(1, keepdim=True)).clamp_min(0))
    return torch.zeros_like(q).scatter(1, others, small).scatter(1, k[:, None], largest)


def quantised_sh_rest(
    shn: torch.Tensor, cfg: GridCodecConfig, lattice=None, zero: torch.Tensor | None = None
) -> torch.Tensor:
    """The SH rest [N, K−1, 3] as the grid codec will decode it, straight-through: with
    ``sh_mode="basis"`` and a fixed ``lattice`` (lo, hi, table) (the one the file is then coded on,
    :func:`~splatpack.codecs.grid.basis.basis_coefficients`) μ + q(c) Bᵀ with c = (x − μ) B on the
    coefficients' shared-step lattice; with ``sh_mode="grid"`` its 3(K−1) planes over their
    current ranges (as the codec quantises the final ones); with ``sh_mode="palette"`` and a fixed
    ``lattice`` (lo, hi, labels) (:func:`~splatpack.codecs.grid.palette.fit_palette`) each row,
    which training keeps at its label's centroid, quantised with ``palette_bits`` over (lo, hi),
    as the file's centroids are; otherwise as it is (R-VQ, or a palette or basis the codec fits
    itself). ``zero`` [N]: in basis mode, the Gaussians whose SH rest the file stores as zero
    (the grid codec's zero mask), rendered as zero."""
    if not shn.numel():
        return shn
    flat = shn.reshape(len(shn), -1)
    if cfg.sh_mode == "basis" and lattice is not None:
        lo, hi, table = lattice
        mean, basis = sh_rest_generator(table, shn.device)
        q = fake_quantise((flat - mean) @ basis, cfg.shN.bits, None, (lo, hi))
        decoded = mean + q @ basis.T
        if zero is not None:
            decoded = torch.where(zero[:, None], torch.zeros_like(decoded), decoded)
        return decoded.reshape(shn.shape)
    if cfg.sh_mode == "palette" and lattice is not None:
        return fake_quantise(flat, cfg.palette_bits, None, tuple(lattice[:2])).reshape(shn.shape)
    if cfg.sh_mode == "grid":
        return fake_quantise(flat, cfg.shN.bits).reshape(shn.shape)
    return shn


def sh_rest_generator(table, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [D], B [D, r]) of an SH-rest generator ``table`` [1 + r, D] (the mean, then the basis
    vectors as rows: :func:`~splatpack.codecs.grid.basis.basis_coefficients`), float32 on ``device``."""
    t = torch.as_tensor(np.asarray(table, np.float32), device=device)
    return t[0].contiguous(), t[1:].T.contiguous()
