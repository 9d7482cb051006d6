"""Self-Organizing Gaussians: a scene as smooth 2D attribute grids coded as images.

Morgenstern et al., "Compact 3D Scene Representation via Self-Organizing Gaussian Grids"
(ECCV 2024). The N Gaussians are placed on an H×W grid so that neighbouring cells hold similar
Gaussians (PLAS, :mod:`splatpack.compress.grid_sort`); each attribute is then quantised and laid
out as an H×W(×C) image, which an image codec (JPEG XL, PNG, WebP) predicts from its neighbours.

Pipeline (``encode_grid_scene``), per attribute a with values x ∈ ℝ^{N×C}:

1. **transform** to the coded domain t = f_a(x): positions t = sign(x)·log1p(|x|) (SOG's
   log activation, which spends the grid's precision near the scene centre); colour DC and SH
   rest as stored (SH coefficients, ``sh0`` [N, 3], ``shN`` [N, K−1, 3] → [N, 3(K−1)]); scales
   as log-scales; rotations as unit quaternions with w ≥ 0 (q and −q are one rotation), with
   ``frames`` first in another of each Gaussian's equivalent local frames (:data:`FRAMES`;
   the quality levels code both |w|-largest and scale-ordered canonical frames, keeping the
   smaller; :mod:`splatpack.core.frames`);
   opacities as logits (SOG quantises the opacity *parameter*, i.e. the logit) or, with
   ``opacity_space="alpha"``, as α = σ(o).
2. **sort** (SOG §3.2): features [N, D] = the weighted blocks w_a·(g_a(x) − μ_a)/σ_a, with
   g_a the *activated* attribute (world position, DC colour, linear scale; μ_a, σ_a the mean and
   standard deviation over the whole block, as SOG's ``normalize``); SOG's weights are 1 for
   position, colour DC and scale. ``sort_into_grid`` returns the grid index [H, W] (−1 = empty,
   fewer than W cells).
3. **quantise** per channel c over its range [lo_c, hi_c] with b_a bits:
   Δ_c = (hi_c − lo_c)/(2^b − 1),  q = round((t − lo_c)/Δ_c) ∈ [0, 2^b − 1],
   decoded t̂ = lo_c + q·Δ_c (float32), so |t̂ − t| ≤ Δ_c/2 (plus float32 rounding) for every
   lossless mode.
4. **lay out** q as an image: cell (y, x) holds the Gaussian grid_index[y, x]; an empty cell
   copies the last occupied cell before it in raster order (so it costs ~nothing to predict).
   Attributes of several planes (the 3(K−1) SH-rest channels as K−1 RGB planes; the high and
   low bytes of a >8-bit attribute for the 8-bit ``webp``; for lossy JPEG XL every channel as
   its own grey plane, so that libjxl's XYB colour transform does not mix them) are tiled into a
   near-square mosaic of ⌈√P⌉ columns; unused tiles are zero.
5. **code** each image with its codec (``jxl`` lossless or lossy, ``png``, ``webp``, or the
   container's ``ans`` as an order-0 baseline without spatial prediction). Lossy JPEG XL has no
   per-value bound (its errors are the DCT's); every other mode keeps the Δ/2 bound of step 3.

SH rest can instead be a **palette** (``sh_mode="palette"``, as gsplat's PngCompression and
SOG's v2 format): k-means with K_p centroids over the 3(K−1)-vectors, centroids ordered along
their first principal axis (so that near labels mean near colours), quantised per channel with
``palette_bits`` and stored as a [K_p, K−1, 3] image, and each Gaussian's nearest quantised
centroid as a label grid [H, W]. Or a **residual VQ** (``sh_mode="rvq"``; Compact-3DGS's R-VQ,
:mod:`splatpack.compress.rvq`, applied to the SH rest): S stages of k codes, x̂ = Σ_s C_s[k_s],
with the codebooks fitted stage by stage on the residuals (or those training learned,
``configs/full.yaml``), quantised per stage and channel with ``palette_bits``, the labels chosen
greedily against the quantised codes and stored as S label planes. On the vanilla lego splat
(post hoc, quality 3, 25 test views): 2 × 256 codes → 1.260 MB at 32.61 dB, a 4096 palette →
1.336 MB at 32.69 dB (vanilla 33.16 dB).

Which cells are empty is stored explicitly (``grid.empty``, the sorted raster indices), so the
decoder reads the occupied cells in raster order: **the decoded scene lists the Gaussians in the
grid's raster order**, not the input order.

SOG's own settings (``config/compression/umbrella_sh.yaml``, experiment ``jxl_quant_sh``, all
JPEG XL through imagecodecs): xyz 14 bits after sign·log1p, f_rest 5, scaling 6, rotation 6
(the raw, unnormalised quaternion), opacity 6 (the logit), and f_dc with no bit quantisation at
JPEG XL ``level=100``. In imagecodecs ``level ≤ 100`` is a *quality* (lossless needs > 100):
quality 100 is Butteraugli distance 0 in lossy (VarDCT) mode on the float32 image normalised from
[−2, 4], so SOG's "lossless" f_dc is in fact near-lossless (on a smooth test image: max error
2.3 %, mean 0.18 % of that range, i.e. roughly 7–9-bit precision). Here the default codes f_dc
with 8 bits per channel over its own range, losslessly (max error Δ/2 ≈ 0.2 % of the range).
SOG quantises with 2^b (not 2^b − 1) steps over the attribute's global min..max; here ranges are
per channel.

Measured on a trained lego splat (110 590 Gaussians, SH degree 3, PLY 27.4 MB; a 333×333
grid): SOG's quantisation (``quality="sog"``) → 2.65 MB (SH rest 1.49 MB of it), 19 % smaller
than the same codec on the PLY's order and 31 % smaller than order-0 ANS of the same integers; a
4096-entry SH palette → 1.38 MB; 16/12/7/10/10/10 bits → 4.53 MB.

The quality ladder (:data:`QUALITY_LEVELS`) spends bits where renders measure them: against
renders of the original (plant.splat and biker.spz, 8 orbit views), one more opacity bit is
worth ~1 dB for ~15 kB while a 14th position bit is worth ~0.1 dB for ~40 kB, so the ladder
gives opacity 7–8 bits and positions 12–13 where SOG uses 6 and 14, and stores rotations as
their smallest three components (+ the index of the largest; 13 % fewer rotation bytes than
four components on plant, with a smaller angle error): quality 6 measured 1.32 MB at 58.3 dB on
plant where SOG's setting gives 1.32 MB at 52.6 dB (8 views; 32 views: ``benchmarks/results/``).
Canonical local frames then took quality 6 to 1.263 MB at 57.92 dB (32 views; 1.316 MB at 57.68
dB without them); on splats trained here, whose split Gaussians share their parent's frame, the
|w|-largest turn alone codes smaller (lego, full preset: 476 kB against 485 kB canonical), hence
``frames="best"``. ``opacity_space="alpha"`` cut the largest α error
from 0.033 to 0.008 at the same 6 bits (+1.6 kB).

File layout: ``docs/spk-format.md``, section "Grid scenes".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatpack.codecs.base import EncodedScene
from splatpack.core.errors import SplatpackError
from splatpack.core.frames import canonical_frames, canonical_gaussians

__all__ = [
    "ATTRIBUTES",
    "FORMAT_KIND",
    "GRID_CODECS",
    "QUALITY_LEVELS",
    "AttributeCoding",
    "GridCodecConfig",
    "encode_grid_scene",
    "grid_attribute_bytes",
    "read_grid_scene",
    "sort_features",
    "sort_scene",
    "write_grid_scene",
]

FORMAT_KIND = "sog-grid"
FORMAT_VERSION = 1
#: codecs an attribute grid may use: the image codecs, and ``ans`` (no spatial prediction)
GRID_CODECS = ("jxl", "png", "webp", "ans")
ATTRIBUTES = ("means", "sh0", "shN", "scales", "quats", "opacities")
OPACITY_SPACES = ("logit", "alpha")
QUATS_ENCODINGS = ("components", "smallest-three")
SH_MODES = ("grid", "palette", "rvq")
#: how each Gaussian's (rotation, scale) pair is coded, all with the same covariance
#: (:mod:`splatpack.core.frames`): ``stored`` as given; ``turned`` turned by a half-turn so that
#: |w| is the largest component; ``canonical`` with the axes also ordered by decreasing scale;
#: ``best`` (the quality levels) codes ``turned`` and ``canonical`` and keeps the smaller.
FRAMES = ("stored", "turned", "canonical", "best")
MAX_RVQ_STAGES = 8
MAX_SPARE = 16  # a grid has at most 2N + MAX_SPARE cells
_ALPHA_EPS = 1e-6


# --------------------------------------------------------------------------- configuration


@dataclass
class AttributeCoding:
    """How one attribute grid is coded: ``bits`` per channel (1..16), the image ``codec`` and,
    for ``jxl``, a Butteraugli ``distance`` (0 = lossless; > 0 lossy, ~1 visually lossless)."""

    bits: int
    codec: str = "jxl"
    distance: float = 0.0


def _coding(bits: int, codec: str = "jxl", distance: float = 0.0):
    return field(default_factory=lambda: AttributeCoding(bits, codec, distance))


@dataclass
class GridCodecConfig:
    """Settings of a grid scene; the defaults are SOG's (``quality="sog"``, see :data:`QUALITY_LEVELS`).

    ``sort_weights`` weight the normalised, activated attribute blocks PLAS sorts by (SOG: 1 for
    ``means``, ``sh0`` and ``scales``; any of :data:`ATTRIBUTES` may be given); ``sort=False``
    keeps the input order (raster), the baseline SOG improves on. ``palette_*`` apply to
    ``sh_mode="palette"`` (``shN.codec`` codes both the label grid and the centroids there,
    always losslessly); ``rvq_*`` and ``palette_bits``/``palette_iterations`` to ``sh_mode="rvq"``.
    """

    means: AttributeCoding = _coding(14)
    sh0: AttributeCoding = _coding(8)
    shN: AttributeCoding = _coding(5)
    scales: AttributeCoding = _coding(6)
    quats: AttributeCoding = _coding(6)
    opacities: AttributeCoding = _coding(6)
    opacity_space: str = "logit"
    quats_encoding: str = "components"
    sh_mode: str = "grid"
    palette_size: int = 4096
    palette_bits: int = 8
    palette_iterations: int = 10
    rvq_stages: int = 2
    rvq_size: int = 256
    sort: bool = True
    sort_weights: dict[str, float] = field(default_factory=lambda: {"means": 1.0, "sh0": 1.0, "scales": 1.0})
    sort_activated: bool = True
    frames: str = "stored"  # each Gaussian's local frame as coded (same covariance): see FRAMES
    jxl_effort: int = 7
    seed: int = 0

    def validate(self) -> GridCodecConfig:
        """Raise :class:`SplatpackError` for an invalid setting; returns ``self``."""
        for name in ATTRIBUTES:
            c = getattr(self, name)
            if not isinstance(c, AttributeCoding):
                raise SplatpackError(f"grid codec: '{name}' must be an AttributeCoding, not {type(c).__name__}")
            if type(c.bits) is not int or not 1 <= c.bits <= 16:
                raise SplatpackError(f"grid codec: {name}.bits must be an integer in 1..16, not {c.bits!r}")
            if c.codec not in GRID_CODECS:
                raise SplatpackError(f"grid codec: {name}.codec must be one of {', '.join(GRID_CODECS)}, not {c.codec!r}")
            if type(c.distance) not in (int, float) or not 0 <= c.distance <= 25 or (c.distance and c.codec != "jxl"):
                raise SplatpackError(f"grid codec: {name}.distance must be 0 (lossless), or in (0, 25] with codec jxl")
        if self.frames not in FRAMES:
            raise SplatpackError(f"grid codec: frames must be one of {', '.join(FRAMES)}, not {self.frames!r}")
        if self.quats_encoding not in QUATS_ENCODINGS:
            raise SplatpackError(f"grid codec: quats_encoding must be one of {QUATS_ENCODINGS}, not {self.quats_encoding!r}")
        if self.quats_encoding == "smallest-three" and self.quats.bits < 2:
            raise SplatpackError("grid codec: smallest-three quaternions need quats.bits >= 2 (the index channel)")
        if self.opacity_space not in OPACITY_SPACES:
            raise SplatpackError(f"grid codec: opacity_space must be one of {OPACITY_SPACES}, not {self.opacity_space!r}")
        if self.sh_mode not in SH_MODES:
            raise SplatpackError(f"grid codec: sh_mode must be one of {SH_MODES}, not {self.sh_mode!r}")
        ints = (self.palette_size, self.palette_bits, self.palette_iterations, self.jxl_effort, self.seed)
        if any(type(v) is not int for v in ints):
            raise SplatpackError(
                "grid codec: palette_size, palette_bits, palette_iterations, jxl_effort and seed must be integers"
            )
        if not 1 <= self.palette_size <= 1 << 16 or not 1 <= self.palette_bits <= 16 or self.palette_iterations < 0:
            raise SplatpackError("grid codec: palette_size must be in 1..65536, palette_bits in 1..16, palette_iterations >= 0")
        if type(self.rvq_stages) is not int or type(self.rvq_size) is not int:
            raise SplatpackError("grid codec: rvq_stages and rvq_size must be integers")
        if not 1 <= self.rvq_stages <= MAX_RVQ_STAGES or not 1 <= self.rvq_size <= 1 << 16:
            raise SplatpackError(f"grid codec: rvq_stages must be in 1..{MAX_RVQ_STAGES}, rvq_size in 1..65536")
        if not 1 <= self.jxl_effort <= 10:
            raise SplatpackError("grid codec: jxl_effort must be in 1..10")
        weights = self.sort_weights if isinstance(self.sort_weights, dict) else {None: None}
        if set(weights) - set(ATTRIBUTES) or any(type(w) not in (int, float) or w < 0 for w in weights.values()):
            raise SplatpackError(f"grid codec: sort_weights takes non-negative weights of {', '.join(ATTRIBUTES)}")
        return self

    @classmethod
    def from_quality(cls, quality: int | str, **overrides) -> GridCodecConfig:
        """The preset for ``quality`` 0 (smallest) .. 10 (near-lossless), a name of
        :data:`QUALITY_NAMES`, or ``"sog"`` (Self-Organizing Gaussians' own quantisation, the
        dataclass defaults); ``overrides`` replace fields afterwards.

        The override ``image_codec`` (one of :data:`GRID_CODECS`) codes every grid with that
        codec instead of JPEG XL: ``png`` (16-bit) and ``webp`` (high and low bytes as two 8-bit
        planes above 8 bits) are the browser-friendly choices, which every browser decodes."""
        image_codec = overrides.pop("image_codec", None)
        q = QUALITY_NAMES.get(quality, quality) if isinstance(quality, str) else quality
        if q != "sog" and (type(q) is not int or q not in QUALITY_LEVELS):
            names = ", ".join([*QUALITY_NAMES, "sog"])
            raise SplatpackError(f"grid codec: quality must be 0..10 or one of {names}, not {quality!r}")
        means, sh0, shn, scales, quats, opac, palette = SOG_LEVEL if q == "sog" else QUALITY_LEVELS[q]
        cfg = cls(
            means=AttributeCoding(means), sh0=AttributeCoding(sh0), shN=AttributeCoding(shn or 5),
            scales=AttributeCoding(scales), quats=AttributeCoding(quats), opacities=AttributeCoding(opac),
            sh_mode="palette" if palette else "grid", palette_size=palette or 4096,
            quats_encoding="components" if q == "sog" else "smallest-three", frames="stored" if q == "sog" else "best",
        )  # fmt: skip
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise SplatpackError(f"grid codec: unknown setting '{k}'")
            if k in ATTRIBUTES and isinstance(v, dict):  # from YAML: {bits: 11} over the level's coding
                try:
                    v = AttributeCoding(**{**asdict(getattr(cfg, k)), **v})
                except TypeError:
                    raise SplatpackError(f"grid codec: '{k}' takes bits, codec and distance, not {sorted(v)}") from None
            setattr(cfg, k, v)
        if image_codec is not None:
            if image_codec not in GRID_CODECS:
                raise SplatpackError(f"grid codec: image_codec must be one of {', '.join(GRID_CODECS)}, not {image_codec!r}")
            for name in ATTRIBUTES:
                getattr(cfg, name).codec = image_codec
        return cfg.validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: quality → (bits of means, sh0, shN (0 = palette), scales, quats, opacities, palette size or 0).
#: All grids are lossless JPEG XL; the quality trades bits (and SH rest as a palette below 5).
#: Measured (bytes, dB against the original's renders, 8 views) on plant.splat / biker.spz, with
#: smallest-three rotations: 3 → 1.123 MB 53.0 / 1.411 MB 53.8; 6 → 1.316 MB 58.3 / 1.631 MB 58.0;
#: 8 → 1.508 MB 63.6 / 1.743 MB 63.4 (``SOG_LEVEL``: 1.317 MB 52.6 / 1.549 MB 53.5).
QUALITY_LEVELS: dict[int, tuple[int, int, int, int, int, int, int]] = {
    0: (11, 6, 0, 5, 5, 6, 1024),
    1: (12, 6, 0, 5, 5, 6, 2048),
    2: (12, 6, 0, 5, 5, 7, 4096),
    3: (12, 6, 0, 6, 6, 7, 4096),
    4: (12, 7, 0, 6, 6, 7, 8192),
    5: (13, 7, 4, 6, 6, 8, 0),
    6: (13, 7, 5, 7, 7, 8, 0),
    7: (14, 8, 5, 7, 7, 8, 0),
    8: (14, 8, 6, 8, 8, 9, 0),
    9: (16, 10, 7, 10, 10, 10, 0),
    10: (16, 16, 8, 12, 12, 12, 0),
}
#: SOG (jxl_quant_sh): its bits, with f_dc as 8-bit lossless; ``quality="sog"``, the dataclass defaults
SOG_LEVEL = (14, 8, 5, 6, 6, 6, 0)
QUALITY_NAMES = {"smallest": 0, "small": 2, "palette": 4, "default": 6, "high": 8, "max": 10}


# --------------------------------------------------------------------------- transforms


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def canonical_quats(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) with w ≥ 0; a zero quaternion becomes the identity."""
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norm > 0, q / np.where(norm > 0, norm, 1), np.array([1.0, 0, 0, 0]))
    return np.where(q[:, :1] < 0, -q, q)


_OTHERS = np.array([[j for j in range(4) if j != k] for k in range(4)])


def smallest_three(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit quaternions [N, 4] → (the three components other than the largest |q_k|, with the
    sign that makes the largest positive, [N, 3] in [−1/√2, 1/√2]; k [N] in 0..3)."""
    k = np.abs(q).argmax(1)
    rows = np.arange(len(q))
    q = q * np.where(q[rows, k] < 0, -1.0, 1.0)[:, None]
    return q[rows[:, None], _OTHERS[k]], k


def from_smallest_three(small: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Inverse of :func:`smallest_three`: the largest component is √(1 − Σ small²)."""
    q = np.zeros((len(k), 4), small.dtype)
    rows = np.arange(len(k))
    q[rows[:, None], _OTHERS[k]] = small
    q[rows, k] = np.sqrt(np.maximum(0, 1 - (small.astype(np.float64) ** 2).sum(1))).astype(small.dtype)
    return q


def signed_log1p(x):
    return np.sign(x) * np.log1p(np.abs(x))


def signed_expm1(t):
    return np.sign(t) * np.expm1(np.abs(t))


def fake_quantise(t: torch.Tensor, bits: int) -> torch.Tensor:
    """Straight-through quantisation of t [N, C] as :func:`_quantise` does it (per channel over
    the current min..max, 2^b − 1 steps): the forward value is the decoded t̂, the gradient is
    the identity (Bengio et al. 2013)."""
    lo = t.detach().amin(0, keepdim=True)
    step = (t.detach().amax(0, keepdim=True) - lo) / ((1 << bits) - 1)
    safe = torch.where(step > 0, step, torch.ones_like(step))
    q = torch.where(step > 0, lo + torch.round((t.detach() - lo) / safe) * safe, t.detach())
    return t + (q - t.detach())


def quantisation_aware(means, quats, log_scales, opacity_logits, sh0, cfg: GridCodecConfig) -> tuple:
    """The attributes as the grid codec will decode them, straight-through, for quantisation-aware
    training: positions through sign·log1p, log-scales, rotations (four components or the
    smallest three and the recomputed largest), opacity logits (or α), colour DC — each with its
    ``cfg`` bits. Lossy JPEG XL distances are not modelled. Returns the five, shaped as given."""
    n = means.shape[0]
    if cfg.frames == "best":
        raise SplatpackError("grid codec: quantisation-aware training needs frames 'stored', 'turned' or 'canonical', not 'best'")
    if cfg.frames != "stored":
        quats, log_scales = canonical_frames(quats, log_scales, order_scales=cfg.frames == "canonical")
    t = torch.sign(means) * torch.log1p(means.abs())
    tq = fake_quantise(t, cfg.means.bits)
    means_q = means + (torch.sign(tq) * torch.expm1(tq.abs()) - means).detach()
    scales_q = fake_quantise(log_scales, cfg.scales.bits)
    q = torch.nn.functional.normalize(quats, dim=-1)
    q = torch.where(q[:, :1] < 0, -q, q)
    if cfg.quats_encoding == "smallest-three":
        k = q.detach().abs().argmax(1)
        others = torch.as_tensor(_OTHERS, device=q.device)[k]  # [N, 3]
        sign = torch.where(q.gather(1, k[:, None]) < 0, -1.0, 1.0)
        small = fake_quantise(q.gather(1, others) * sign, cfg.quats.bits)
        largest = torch.sqrt((1 - (small * small).sum(1, keepdim=True)).clamp_min(0))
        quats_q = torch.zeros_like(q).scatter(1, others, small).scatter(1, k[:, None], largest)
    else:
        quats_q = fake_quantise(q, cfg.quats.bits)
    o = opacity_logits.reshape(n, 1)
    if cfg.opacity_space == "logit":
        o_q = fake_quantise(o, cfg.opacities.bits)
    else:
        a = fake_quantise(torch.sigmoid(o), cfg.opacities.bits).clamp(_ALPHA_EPS, 1 - _ALPHA_EPS)
        o_q = o + (torch.log(a) - torch.log1p(-a) - o).detach()
    sh0_q = fake_quantise(sh0.reshape(n, -1), cfg.sh0.bits).reshape(sh0.shape)
    return means_q, quats_q, scales_q, o_q.reshape(opacity_logits.shape), sh0_q


def _coded_values(gs, cfg: GridCodecConfig) -> dict[str, np.ndarray]:
    """Every attribute in its coded domain, [N, C] float64 (see the module docstring, step 1)."""
    n = len(gs)
    out = {
        "means": signed_log1p(_np(gs.means)),
        "sh0": _np(gs.sh0).reshape(n, -1),
        "scales": _np(gs.scales),
        "quats": canonical_quats(_np(gs.quats)),
    }
    logit = _np(gs.opacities).reshape(n, 1)
    out["opacities"] = logit if cfg.opacity_space == "logit" else 1.0 / (1.0 + np.exp(-logit))
    if gs.shN.shape[1]:
        out["shN"] = _np(gs.shN).reshape(n, -1)  # [N, (K-1)*3], coefficient-major, RGB inner
    for name, v in out.items():
        if not np.isfinite(v).all():
            raise SplatpackError(f"cannot encode a grid scene: '{name}' has non-finite values")
    return out


def sort_groups(gs, weights: dict[str, float], activated: bool = True) -> dict[str, np.ndarray]:
    """The attribute groups SOG sorts on, [N, C] each. ``activated``: the world position, linear
    scale, α and unit quaternion (SOG's ``activated: true``) instead of the stored parameters."""
    n = len(gs)
    out = {}
    for name in ATTRIBUTES:
        if float(weights.get(name, 0.0)) <= 0:
            continue
        if name == "means":
            g = _np(gs.means) if activated else signed_log1p(_np(gs.means))
        elif name == "scales":
            g = np.exp(_np(gs.scales)) if activated else _np(gs.scales)
        elif name == "opacities":
            o = _np(gs.opacities).reshape(n, 1)
            g = 1.0 / (1.0 + np.exp(-o)) if activated else o
        elif name == "quats":
            g = canonical_quats(_np(gs.quats))
        else:
            g = _np(getattr(gs, name)).reshape(n, -1)
        out[name] = g
    return out


def sort_features(gs, weights: dict[str, float], activated: bool = True) -> np.ndarray:
    """SOG's sort features [N, D] float32 of ``gs``: :func:`sort_groups` normalised and weighted
    by :func:`splatpack.compress.grid_sort.sort_features`."""
    from splatpack.compress.grid_sort import sort_features as normalise

    try:
        return normalise(sort_groups(gs, weights, activated), weights)
    except ValueError:
        raise SplatpackError("grid codec: sort_weights select no attribute") from None


def sort_scene(gs, cfg: GridCodecConfig | None = None, sort_config=None) -> tuple[np.ndarray, dict]:
    """The grid index [H, W] (−1 = empty) of ``gs``: PLAS on :func:`sort_features`, or the input
    order in raster order when ``cfg.sort`` is False (or N < 16). Returns (grid_index, stats)."""
    from splatpack.compress.grid_sort import GridSortConfig, grid_shape, sort_into_grid

    cfg = (cfg or GridCodecConfig()).validate()
    n = len(gs)
    if n == 0:
        raise SplatpackError("cannot encode an empty scene as a grid")
    h, w = grid_shape(n)
    if not cfg.sort or n < 16:
        idx = np.arange(h * w)
        stats = {"seconds": 0.0, "passes": 0, "shape": (h, w), "empty": h * w - n}
        return np.where(idx < n, idx, -1).reshape(h, w), stats
    feats = sort_features(gs, cfg.sort_weights, cfg.sort_activated)
    sort_cfg = sort_config or GridSortConfig(seed=cfg.seed)
    return sort_into_grid(feats, (h, w), sort_cfg)


# --------------------------------------------------------------------------- quantisation


def _quantise(t: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q [N, C] uint16, lo [C] float32, hi [C] float32), with the decoder's float32 step."""
    lo = t.min(axis=0).astype(np.float32)
    hi = t.max(axis=0).astype(np.float32)
    levels = (1 << bits) - 1
    step = _step(lo, hi, bits).astype(np.float64)
    safe = np.where(step > 0, step, 1.0)
    q = np.where(step > 0, np.rint((t - lo.astype(np.float64)) / safe), 0.0)
    return np.clip(q, 0, levels).astype(np.uint16), lo, hi


def _step(lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Δ = (hi − lo)/(2^b − 1) in float32 (the decoder's arithmetic)."""
    return (hi - lo) / np.float32((1 << bits) - 1)


def _dequantise(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """t̂ = lo + q·Δ, float32 (a forged range may overflow: the reader checks the result)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return lo + q.astype(np.float32) * _step(lo, hi, bits)


def _storage_dtype(bits: int) -> np.dtype:
    return np.dtype(np.uint8) if bits <= 8 else np.dtype(np.uint16)


# --------------------------------------------------------------------------- image layout


def _fill_source(grid_index: np.ndarray) -> np.ndarray:
    """[H*W] Gaussian index shown in each cell: its own, or for an empty cell the last occupied
    cell before it in raster order (the first occupied one for leading empties)."""
    perm = grid_index.reshape(-1)
    occ = perm >= 0
    pos = np.maximum.accumulate(np.where(occ, np.arange(perm.size), -1))
    pos[pos < 0] = int(np.argmax(occ))
    return perm[pos]


def _mosaic_shape(planes: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(planes))
    return math.ceil(planes / cols), cols


@dataclass(frozen=True)
class _Layout:
    """How [P, H, W, c] planes of ``bits``-bit integers become one image for ``codec``:

    * ``split`` (webp, > 8 bits): the high bytes, then the low bytes, as 2P 8-bit planes;
    * ``gray`` (lossy jxl): every channel its own grey tile (P·c planes, channel inner), so
      that libjxl's lossy mode does not mix the channels through its XYB colour transform;
    * P' > 1 planes are tiled row-major into a mosaic of ⌈√P'⌉ columns (spare tiles zero).
    """

    codec: str
    bits: int
    distance: float = 0.0

    @property
    def split(self) -> bool:
        return self.codec == "webp" and self.bits > 8

    @property
    def gray(self) -> bool:
        return self.codec == "jxl" and self.distance > 0

    @property
    def dtype(self) -> np.dtype:
        return _storage_dtype(8 if self.split else self.bits)

    def stored(self, p: int, c: int) -> tuple[int, int]:
        """(planes, channels) as stored."""
        p, c = (p * c, 1) if self.gray else (p, c)
        return (2 * p if self.split else p), c

    def image_shape(self, p: int, h: int, w: int, c: int) -> tuple[int, ...]:
        p, c = self.stored(p, c)
        rows, cols = _mosaic_shape(p) if p > 1 else (1, 1)
        return (rows * h, cols * w) if c == 1 else (rows * h, cols * w, c)

    def to_image(self, planes: np.ndarray) -> np.ndarray:
        """[P, H, W, c] integer planes → the image to code ([H', W'] or [H', W', c])."""
        if self.gray:
            p, h, w, c = planes.shape
            planes = planes.transpose(0, 3, 1, 2).reshape(p * c, h, w, 1)
        if self.split:
            planes = np.concatenate([planes >> 8, planes & 0xFF])
        planes = planes.astype(self.dtype)
        p, h, w, c = planes.shape
        if p == 1:
            img = planes[0]
        else:
            rows, cols = _mosaic_shape(p)
            tiles = np.zeros((rows * cols, h, w, c), planes.dtype)
            tiles[:p] = planes
            img = tiles.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
        return img[..., 0] if c == 1 else img

    def from_image(self, img: np.ndarray, p: int, h: int, w: int, c: int) -> np.ndarray:
        """Inverse of :meth:`to_image` (``img`` of :meth:`image_shape`): [P, H, W, c] uint16."""
        sp, sc = self.stored(p, c)
        img = img.reshape(img.shape[0], img.shape[1], sc)
        if sp == 1:
            planes = img[None]
        else:
            rows, cols = _mosaic_shape(sp)
            planes = img.reshape(rows, h, cols, w, sc).transpose(0, 2, 1, 3, 4).reshape(rows * cols, h, w, sc)[:sp]
        planes = planes.astype(np.uint16)
        if self.split:
            half = sp // 2
            planes = (planes[:half] << 8) | planes[half:]
        if self.gray:
            planes = planes.reshape(p, c, h, w).transpose(0, 2, 3, 1)
        return planes

    def encode(self, img: np.ndarray, effort: int) -> bytes:
        from splatpack.spk.arrays import encode_array

        if self.codec == "ans":
            return encode_array(img.reshape(img.shape[0] * img.shape[1], -1), "ans")
        if self.codec == "jxl":
            return encode_array(img, "jxl", bits=8 if self.split else self.bits, distance=self.distance, effort=effort)
        return encode_array(img, self.codec)


# --------------------------------------------------------------------------- palette (k-means)


def kmeans(x: np.ndarray, k: int, iterations: int, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means [N, D] → centroids [k, D] float32 (:func:`splatpack.compress.kmeans.kmeans`)."""
    from splatpack.compress.kmeans import kmeans as lloyd

    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    return lloyd(xt, k, iterations, torch.Generator().manual_seed(seed)).numpy()


def _palette(t: np.ndarray, cfg: GridCodecConfig):
    """(labels [N] uint16, centroid q [k, D] uint16, lo, hi): k-means, centroids ordered along
    their first principal axis, quantised, then every row's nearest *quantised* centroid."""
    n = t.shape[0]
    k = min(cfg.palette_size, n)
    cent = _along_principal_axis(kmeans(t, k, cfg.palette_iterations, cfg.seed).astype(np.float64))
    q, lo, hi = _quantise(cent, cfg.palette_bits)
    deq = _dequantise(q, lo, hi, cfg.palette_bits)
    from splatpack.compress.kmeans import nearest_code

    labels = nearest_code(torch.from_numpy(t.astype(np.float32)), torch.from_numpy(deq.astype(np.float32))).numpy()
    return labels.astype(np.uint16), q, lo, hi


def _along_principal_axis(codes: np.ndarray) -> np.ndarray:
    """Rows [k, D] reordered along their first principal axis, so that near labels mean near codes."""
    centred = codes - codes.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(codes) > 1 else np.zeros(codes.shape[1])
    return codes[np.argsort(centred @ axis, kind="stable")]


def _label_bits(k: int) -> int:
    return max(1, (k - 1).bit_length())


def _residual_palette(t: np.ndarray, cfg: GridCodecConfig, codebooks=None):
    """(labels [N, S] uint16, codebook q [S, K, D] uint16, lo [S, D], hi [S, D]): a residual VQ
    of the rows of ``t`` — the given ``codebooks`` [S, K, D] (from training) or a stage-wise
    k-means on the residuals (:meth:`ResidualVQ.init_kmeans`) — each stage's codes ordered along
    their first principal axis and quantised per channel with ``palette_bits``; then each row's
    labels chosen greedily stage by stage against the *quantised* codebooks, so that the decoder's
    Σ_s Ĉ_s[k_s] is what the labels were chosen for. Given codebooks with more codes than rows
    are replaced by fitted ones (a file holds at most N codes a stage)."""
    from splatpack.compress.kmeans import nearest_code
    from splatpack.compress.rvq import ResidualVQ, ResidualVQConfig

    x = torch.from_numpy(np.ascontiguousarray(t, np.float32))
    books = None if codebooks is None else np.asarray(torch.as_tensor(codebooks).detach().cpu(), np.float64)
    if books is not None and books.ndim == 3 and books.shape[1] > len(t):
        books = None  # more codes than Gaussians (a tiny scene): the format holds k ≤ N, so fit afresh
    if books is None:
        k = min(cfg.rvq_size, len(t))
        vq = ResidualVQ(t.shape[1], ResidualVQConfig(num_stages=cfg.rvq_stages, codebook_size=k,
                                                     kmeans_iters=cfg.palette_iterations))  # fmt: skip
        vq.init_kmeans(x, torch.Generator().manual_seed(cfg.seed))
        books = np.asarray(vq.codebooks().detach().cpu(), np.float64)
    if books.ndim != 3 or books.shape[2] != t.shape[1] or not 1 <= books.shape[0] <= MAX_RVQ_STAGES:
        raise SplatpackError(f"grid codec: R-VQ codebooks must be [S ≤ {MAX_RVQ_STAGES}, K, {t.shape[1]}], not {books.shape}")
    qs, los, his, labels = [], [], [], []
    r = x.clone()
    for c in books:
        q, lo, hi = _quantise(_along_principal_axis(c), cfg.palette_bits)
        deq = torch.from_numpy(_dequantise(q, lo, hi, cfg.palette_bits).astype(np.float32))
        k = nearest_code(r, deq)
        r -= deq[k]
        qs.append(q), los.append(lo), his.append(hi), labels.append(k.numpy())
    return np.stack(labels, 1).astype(np.uint16), np.stack(qs), np.stack(los), np.stack(his)


# --------------------------------------------------------------------------- encoding


def _check_grid_index(grid_index, n: int) -> np.ndarray:
    gi = np.asarray(grid_index)
    if gi.ndim != 2 or gi.size == 0 or gi.dtype.kind not in "iu":
        raise SplatpackError(f"grid_index must be a non-empty 2-D integer array, not {gi.dtype} {gi.shape}")
    gi = gi.astype(np.int64)
    if gi.size > 2 * n + MAX_SPARE:
        raise SplatpackError(f"a {gi.shape[0]}x{gi.shape[1]} grid is too large for {n} Gaussians (at most 2N + {MAX_SPARE} cells)")
    occ = gi[gi >= 0]
    if (gi < -1).any() or occ.size != n or not np.array_equal(np.sort(occ), np.arange(n)):
        raise SplatpackError(f"grid_index must hold each of the {n} Gaussians exactly once (−1 for an empty cell)")
    return gi


def encode_grid_scene(
    gs, cfg: GridCodecConfig | None = None, grid_index=None, shn_codebooks=None
) -> tuple[list, dict[str, Any]]:
    """A :class:`~splatpack.core.GaussianSet` → (``.spk`` sections, meta) of a grid scene.

    ``grid_index`` [H, W] (each Gaussian once, −1 = empty) skips the sort; otherwise
    :func:`sort_scene` computes it. ``shn_codebooks`` [S, K, 3(K_sh−1)] (``sh_mode="rvq"``):
    the residual codebooks training learned, instead of fitting new ones. See the module
    docstring for the steps.
    """
    from splatpack.spk.arrays import CodecError, encode_array
    from splatpack.spk.container import Section

    cfg = (cfg or GridCodecConfig()).validate()
    n = len(gs)
    if n == 0:
        raise SplatpackError("cannot encode an empty scene as a grid")
    canonical = canonical_gaussians(gs) if cfg.frames != "stored" else None
    if cfg.frames in ("turned", "best"):
        gs = canonical_gaussians(gs, order_scales=False)
    elif cfg.frames == "canonical":
        gs = canonical
    values = _coded_values(gs, cfg)
    sort_info: dict[str, Any] = {"grid_index": "given"}
    if grid_index is None:  # on ordered scales unless the frames are stored as given (a better feature)
        grid_index, stats = sort_scene(gs if canonical is None else canonical, cfg)
        sort_info = {"sorted": bool(cfg.sort and n >= 16), "passes": int(stats["passes"]),
                     "weights": dict(cfg.sort_weights), "activated": cfg.sort_activated}  # fmt: skip
    gi = _check_grid_index(grid_index, n)
    h, w = gi.shape
    src = _fill_source(gi)
    empty = np.flatnonzero(gi.reshape(-1) < 0).astype(np.uint32)

    def image(section: str, q: np.ndarray, planes: int, channels: int, coding: AttributeCoding, bits: int) -> Section:
        """Lay out q [N, planes*channels] on the grid as ``planes`` tiles of ``channels`` and code it."""
        cells = q[src].reshape(h, w, planes, channels).transpose(2, 0, 1, 3)
        return coded_image(section, cells, coding.codec, bits, coding.distance)

    def coded_image(section: str, planes: np.ndarray, codec: str, bits: int, distance: float = 0.0) -> Section:
        layout = _Layout(codec, bits, distance)
        try:
            return Section(section, codec, layout.encode(layout.to_image(planes), cfg.jxl_effort))
        except CodecError as exc:
            raise SplatpackError(f"cannot code '{section}': {exc}") from None

    def code(name: str, t: np.ndarray) -> tuple[list[Section], dict[str, Any]]:
        """The sections and the meta entry of attribute ``name`` with coded values t [N, C]."""
        coding: AttributeCoding = getattr(cfg, name)
        if name == "shN" and cfg.sh_mode in ("palette", "rvq"):
            if cfg.sh_mode == "palette":
                labels, cq, lo, hi = _palette(t, cfg)
                stages, k = 1, cq.shape[0]
                labels = labels[:, None]
            else:
                labels, cq, lo, hi = _residual_palette(t, cfg, shn_codebooks)
                stages, k = cq.shape[:2]
            lbits = _label_bits(k)  # labels and centroids: always lossless
            secs = [image("grid.shN.labels", labels, stages, 1, AttributeCoding(lbits, coding.codec), lbits),
                    coded_image("grid.shN.centroids", cq.reshape(1, stages * k, -1, 3), coding.codec, cfg.palette_bits)]  # fmt: skip
            entry = {"mode": cfg.sh_mode, **({"stages": stages} if cfg.sh_mode == "rvq" else {}), "size": k,
                     "label_bits": lbits, "bits": cfg.palette_bits, "codec": coding.codec, "distance": 0.0}  # fmt: skip
            return secs, {**entry, "lo": lo.reshape(-1).tolist(), "hi": hi.reshape(-1).tolist()}
        entry = {"bits": coding.bits, "codec": coding.codec, "distance": float(coding.distance)}
        if name == "quats" and cfg.quats_encoding == "smallest-three":
            small, largest = smallest_three(t)
            q, lo, hi = _quantise(small, coding.bits)
            sec = image("grid.quats", np.concatenate([q, largest[:, None].astype(np.uint16)], 1), 1, 4, coding, coding.bits)
            return [sec], {**entry, "encoding": "smallest-three", "lo": lo.tolist(), "hi": hi.tolist()}
        q, lo, hi = _quantise(t, coding.bits)
        channels = 3 if name == "shN" else t.shape[1]
        sec = image(f"grid.{name}", q, t.shape[1] // channels, channels, coding, coding.bits)
        return [sec], {**entry, "lo": lo.tolist(), "hi": hi.tolist(), **({"mode": "grid"} if name == "shN" else {})}

    coded = {name: code(name, values[name]) for name in ATTRIBUTES if name in values}
    frames = "turned" if cfg.frames == "best" else cfg.frames
    if cfg.frames == "best":
        # the canonical frames (scales decreasing) code smaller where a splat's frames are random
        # (plant.splat −4 %), the given ones where training's splits left siblings in one frame
        # (lego's full-preset run: +1.7 % canonical); the encoder keeps the smaller pair
        alt = _coded_values(canonical, cfg)
        alt_coded = {name: code(name, alt[name]) for name in ("scales", "quats")}

        def size(c: dict) -> int:
            return sum(len(sec.payload) for name in ("scales", "quats") for sec in c[name][0])

        if size(alt_coded) < size(coded):
            coded.update(alt_coded)
            frames = "canonical"
    sections = [Section("grid.empty", "deflate", encode_array(empty, "deflate"))]
    for name in ATTRIBUTES:
        if name in coded:
            sections += coded[name][0]
    attrs = {name: entry for name, (_, entry) in coded.items()}
    meta = {
        "kind": FORMAT_KIND,
        "version": FORMAT_VERSION,
        "grid": {"height": h, "width": w},
        "sh_degree": int(gs.sh_degree),
        "means_transform": "signed-log1p",
        "opacity_space": cfg.opacity_space,
        "attributes": attrs,
        "sort": sort_info,
        "frames": frames,  # informative (stored, turned or canonical): decoders use each pair as stored
    }
    return sections, meta


def write_grid_scene(path: str | Path, gs, cfg: GridCodecConfig | None = None, grid_index=None, shn_codebooks=None) -> int:
    """Encode ``gs`` and write it to ``path`` atomically; returns the file size in bytes."""
    return GRID_SCENE_CODEC.encode(gs, cfg, grid_index, shn_codebooks).write(path)


def grid_attribute_bytes(sections) -> dict[str, int]:
    """Payload bytes per attribute (``shN`` includes labels and centroids; ``empty`` the mask)."""
    out: dict[str, int] = {}
    for s in sections:
        key = s.name.split(".")[1]
        out[key] = out.get(key, 0) + len(s.payload)
    return out


# --------------------------------------------------------------------------- decoding


def _int(v, lo: int, hi: int, what: str) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise ValueError(f"{what} must be an integer in {lo}..{hi}, not {v!r}")
    return v


def _range(entry: dict, c: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = entry["lo"], entry["hi"]
    if not (isinstance(lo, list) and isinstance(hi, list) and len(lo) == len(hi) == c):
        raise ValueError(f"{what} needs {c} lo/hi values")
    if not all(type(v) in (int, float) for v in lo + hi):
        raise ValueError(f"{what} lo/hi are not numbers")
    with np.errstate(over="ignore"):
        lo32, hi32 = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    if not (np.isfinite(lo32).all() and np.isfinite(hi32).all() and (lo32 <= hi32).all()):
        raise ValueError(f"{what} has an invalid range")
    return lo32, hi32


def read_grid_scene(path: str | Path):
    """Read a grid ``.spk`` back into a :class:`~splatpack.core.GaussianSet` (:func:`decode_grid_scene`)."""
    from splatpack.spk.arrays import CODECS
    from splatpack.spk.container import SpkReader

    with SpkReader(path, known_codecs=set(CODECS)) as r:
        return decode_grid_scene(r)


def decode_grid_scene(r):
    """Read a grid ``.spk`` back into a :class:`~splatpack.core.GaussianSet` (Gaussians in the
    grid's raster order). Every problem (corrupt or truncated file, a section whose shape or
    dtype disagrees with the header, malformed meta) raises one :class:`SpkError`."""
    from splatpack.spk.arrays import CodecError, decode_array
    from splatpack.spk.container import SpkError
    from splatpack.core import GaussianSet

    path = r.path

    m, n = r.meta, r.num_gaussians
    if m.get("kind") != FORMAT_KIND:
        raise SpkError(f"not a grid scene (kind {m.get('kind')!r}, expected {FORMAT_KIND!r})", path)

    def grid(name: str, layout: _Layout, p: int, gh: int, gw: int, c: int) -> np.ndarray:
        """Section ``name`` as [P, gh, gw, c] planes (see :class:`_Layout`)."""
        img = section(name, layout.codec, layout.image_shape(p, gh, gw, c), layout.dtype)
        return layout.from_image(img, p, gh, gw, c)

    def section(name: str, codec: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        if not r.has(name):
            raise SpkError(f"section '{name}' is missing", path)
        if r.info(name).codec != codec:
            raise SpkError(f"section '{name}' uses codec '{r.info(name).codec}', the header says '{codec}'", path)
        payload = r.read(name)
        try:
            if codec == "ans":
                flat = (shape[0] * shape[1], math.prod(shape[2:]))
                return decode_array(payload, "ans", name, math.prod(shape), shape=flat, dtype=dtype).reshape(shape)
            return decode_array(payload, codec, name, math.prod(shape), shape=shape, dtype=dtype)
        except CodecError as exc:
            raise SpkError(str(exc), path) from None

    try:
        if _int(m.get("version"), 1, 1, "version") != FORMAT_VERSION:
            raise ValueError("version")
        h = _int(m["grid"]["height"], 1, 2 * n + MAX_SPARE, "grid height")
        w = _int(m["grid"]["width"], 1, 2 * n + MAX_SPARE, "grid width")
        if not n <= h * w <= 2 * n + MAX_SPARE or n == 0:
            raise ValueError(f"a {h}x{w} grid does not fit {n} Gaussians")
        degree = _int(m["sh_degree"], 0, 10, "sh_degree")
        if m["means_transform"] != "signed-log1p" or m["opacity_space"] not in OPACITY_SPACES:
            raise ValueError("unknown transform")
        attrs = m["attributes"]
        if not isinstance(attrs, dict):
            raise ValueError("attributes is not an object")
        n_empty = h * w - n
        empty = section("grid.empty", "deflate", (n_empty,), np.dtype(np.uint32)).astype(np.int64)
        if n_empty and (empty[0] < 0 or empty[-1] >= h * w or (np.diff(empty) <= 0).any()):
            raise SpkError("section 'grid.empty' is not a strictly increasing list of cells", path)
        occ = np.ones(h * w, bool)
        occ[empty] = False
        k_rest = (degree + 1) ** 2 - 1
        out: dict[str, np.ndarray] = {}
        for name in ATTRIBUTES:
            channels = {"means": 3, "sh0": 3, "shN": 3 * k_rest, "scales": 3, "quats": 4, "opacities": 1}[name]
            if channels == 0:
                if name in attrs:
                    raise ValueError("shN present for SH degree 0")
                continue
            e = attrs[name]
            codec, distance = e["codec"], e["distance"]
            if codec not in GRID_CODECS:
                raise ValueError(f"{name} codec {codec!r}")
            if type(distance) not in (int, float) or not 0 <= distance <= 25 or (distance and codec != "jxl"):
                raise ValueError(f"{name} distance {distance!r}")
            if name == "shN" and e.get("mode") == "palette":
                k = _int(e["size"], 1, min(n, 1 << 16), "palette size")
                lbits = _int(e["label_bits"], _label_bits(k), _label_bits(k), "label bits")
                bits = _int(e["bits"], 1, 16, "palette bits")
                lo, hi = _range(e, channels, name)
                labels = grid("grid.shN.labels", _Layout(codec, lbits, distance), 1, h, w, 1).reshape(h * w)[occ]
                if labels.size and int(labels.max()) >= k:
                    raise SpkError("section 'grid.shN.labels' has a label outside the palette", path)
                cq = grid("grid.shN.centroids", _Layout(codec, bits, distance), 1, k, k_rest, 3).reshape(k, channels)
                if int(cq.max()) >> bits:
                    raise SpkError(f"section 'grid.shN.centroids' has values over {bits} bits", path)
                out[name] = _dequantise(cq, lo, hi, bits)[labels.astype(np.int64)]
                continue
            if name == "shN" and e.get("mode") == "rvq":
                stages = _int(e["stages"], 1, MAX_RVQ_STAGES, "R-VQ stages")
                k = _int(e["size"], 1, min(n, 1 << 16), "R-VQ codebook size")
                lbits = _int(e["label_bits"], _label_bits(k), _label_bits(k), "label bits")
                bits = _int(e["bits"], 1, 16, "R-VQ codebook bits")
                lo, hi = _range(e, stages * channels, name)
                planes = grid("grid.shN.labels", _Layout(codec, lbits, distance), stages, h, w, 1)
                labels = planes.transpose(1, 2, 0, 3).reshape(h * w, stages)[occ].astype(np.int64)
                if labels.size and int(labels.max()) >= k:
                    raise SpkError("section 'grid.shN.labels' has a label outside the codebook", path)
                cq = grid("grid.shN.centroids", _Layout(codec, bits, distance), 1, stages * k, k_rest, 3)
                cq = cq.reshape(stages, k, channels)
                if int(cq.max()) >> bits:
                    raise SpkError(f"section 'grid.shN.centroids' has values over {bits} bits", path)
                lo, hi = lo.reshape(stages, channels), hi.reshape(stages, channels)
                v = np.zeros((labels.shape[0], channels), np.float32)
                for s_ in range(stages):  # Σ_s Ĉ_s[k_s], summed in float32 in stage order
                    v += _dequantise(cq[s_], lo[s_], hi[s_], bits)[labels[:, s_]]
                out[name] = v
                continue
            if name == "shN" and e.get("mode") != "grid":
                raise ValueError("unknown shN mode")
            if name == "quats" and e.get("encoding", "components") == "smallest-three":
                bits = _int(e["bits"], 2, 16, "quats bits")
                lo, hi = _range(e, 3, name)
                planes = grid("grid.quats", _Layout(codec, bits, distance), 1, h, w, 4)
                q = planes.reshape(h * w, 4)[occ]
                if int(q.max()) >> bits or (q[:, 3] > 3).any():
                    raise SpkError("section 'grid.quats' has values over its bits or an index over 3 (corrupt)", path)
                small = _dequantise(q[:, :3], lo, hi, bits)
                out[name] = from_smallest_three(small, q[:, 3].astype(np.int64))
                continue
            if name == "quats" and e.get("encoding", "components") != "components":
                raise ValueError("unknown quats encoding")
            bits = _int(e["bits"], 1, 16, f"{name} bits")
            lo, hi = _range(e, channels, name)
            c = 3 if name == "shN" else channels
            p = channels // c
            planes = grid(f"grid.{name}", _Layout(codec, bits, distance), p, h, w, c)  # [P, H, W, c]
            q = planes.transpose(1, 2, 0, 3).reshape(h * w, channels)[occ]
            if int(q.max()) >> bits:
                raise SpkError(f"section 'grid.{name}' has values over {bits} bits (corrupt)", path)
            out[name] = _dequantise(q, lo, hi, bits)
        opacity_space = m["opacity_space"]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise SpkError(f"malformed grid-scene header ({type(exc).__name__}: {exc})", path) from None

    with np.errstate(over="ignore", invalid="ignore"):
        out["means"] = signed_expm1(out["means"]).astype(np.float32)
        opac = out["opacities"][:, 0]
        if opacity_space == "alpha":
            a = np.clip(opac, np.float32(_ALPHA_EPS), np.float32(1 - _ALPHA_EPS))
            opac = np.log(a) - np.log1p(-a)
        for name, v in out.items():  # a forged range can overflow float32
            if not np.isfinite(v).all():
                raise SpkError(f"'{name}' decodes to non-finite values (corrupt range in the header)", path)
    shn = out["shN"].reshape(n, k_rest, 3) if k_rest else np.zeros((n, 0, 3), np.float32)
    return GaussianSet(
        means=torch.from_numpy(out["means"]),
        quats=torch.from_numpy(out["quats"]),
        scales=torch.from_numpy(out["scales"]),
        opacities=torch.from_numpy(opac.astype(np.float32)),
        sh0=torch.from_numpy(out["sh0"].reshape(n, 1, 3)),
        shN=torch.from_numpy(np.ascontiguousarray(shn, np.float32)),
    )


class GridSceneCodec:
    """Grid scenes as a :class:`~splatpack.codecs.base.SceneCodec` (``kind: sog-grid``)."""

    kind = FORMAT_KIND

    def encode(self, gs, config: GridCodecConfig | None = None, grid_index=None, shn_codebooks=None) -> EncodedScene:
        """:func:`encode_grid_scene` of ``gs`` (a given PLAS ``grid_index`` and trained SH-rest
        R-VQ ``shn_codebooks`` are optional)."""
        sections, meta = encode_grid_scene(gs, config, grid_index, shn_codebooks)
        return EncodedScene(sections, meta, len(gs))

    def decode(self, reader):
        return decode_grid_scene(reader)

    def gaussians(self, decoded):
        return decoded


GRID_SCENE_CODEC = GridSceneCodec()
