"""Settings of a grid scene: how each attribute grid is coded (:class:`AttributeCoding`), the
whole scene's :class:`GridCodecConfig`, and the quality ladder :data:`QUALITY_LEVELS`.

SOG's own settings (Morgenstern et al., ECCV 2024; ``config/compression/umbrella_sh.yaml``,
experiment ``jxl_quant_sh``, all JPEG XL through imagecodecs): xyz 14 bits after sign·log1p,
f_rest 5, scaling 6, rotation 6 (the raw, unnormalised quaternion), opacity 6 (the logit), and
f_dc with no bit quantisation at JPEG XL ``level=100``. In imagecodecs ``level ≤ 100`` is a
*quality* (lossless needs > 100): quality 100 is Butteraugli distance 0 in lossy (VarDCT) mode
on the float32 image normalised from [−2, 4], so SOG's "lossless" f_dc is in fact near-lossless.
Here :data:`SOG_LEVEL` (``quality="sog"``, the dataclass defaults) codes f_dc with 8 bits per
channel over its own range, losslessly (max error Δ/2). SOG quantises with 2^b (not 2^b − 1)
steps over the attribute's global min..max; here ranges are per channel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from splatpack.core.errors import SplatpackError

__all__ = [
    "ATTRIBUTES",
    "DROP_FRACTION",
    "FORMAT_KIND",
    "FORMAT_VERSION",
    "FRAMES",
    "GRID_CODECS",
    "MAX_RVQ_STAGES",
    "MAX_SPARE",
    "MEANS_ENCODINGS",
    "MEANS_TRANSFORMS",
    "OPACITY_SPACES",
    "ORDER0_ATTRIBUTES",
    "ORDERS",
    "QUALITY_LEVELS",
    "QUALITY_NAMES",
    "QUATS_ENCODINGS",
    "SH_MODES",
    "SOG_LEVEL",
    "AttributeCoding",
    "GridCodecConfig",
    "resolved_low_bits",
]

FORMAT_KIND = "sog-grid"
FORMAT_VERSION = 1
#: codecs an attribute grid may use: the image codecs, and ``ans`` (no spatial prediction)
GRID_CODECS = ("jxl", "png", "webp", "ans")
ATTRIBUTES = ("means", "sh0", "shN", "scales", "quats", "opacities")
OPACITY_SPACES = ("logit", "alpha")
QUATS_ENCODINGS = ("components", "smallest-three")
#: how positions are coded: ``grid`` (an image of the high bits) or ``curve-keys`` (the sorted
#: Hilbert keys of the high bits as gaps, the grid in their order: :mod:`.curve_keys`; on a grid
#: given in another order, an image)
MEANS_ENCODINGS = ("grid", "curve-keys")
#: what positions are quantised as: t = sign(x)·log1p(|x|) (SOG's log activation), the position
#: itself (``linear``: a quantised file's fixed-point positions, coded exactly on their lattice),
#: or ``auto`` (the quality levels: ``linear`` where that lattice fits the level's bits + 1,
#: :func:`resolved_positions`)
MEANS_TRANSFORMS = ("signed-log1p", "linear", "auto")
#: attributes close to noise along the curve, which the quality levels (and allocation's lossless
#: options) code with the order-0 ``ans`` codec: 2–4 % smaller than JPEG XL's predictors there
#: (README, "Sixth round")
ORDER0_ATTRIBUTES = ("quats", "opacities")
#: how the Gaussians are placed on the grid: ``plas`` (SOG's sort on position, colour and scale)
#: or ``hilbert`` (the 3D Hilbert curve of the positions as a snake, :mod:`splatpack.compress.curve_order`)
ORDERS = ("plas", "hilbert")
SH_MODES = ("grid", "palette", "rvq", "basis")
#: how each Gaussian's (rotation, scale) pair is coded, all with the same covariance
#: (:mod:`splatpack.core.frames`): ``stored`` as given; ``turned`` turned by a half-turn so that
#: |w| is the largest component; ``canonical`` with the axes also ordered by decreasing scale;
#: ``best`` (the quality levels) codes ``turned`` and ``canonical`` and keeps the smaller.
FRAMES = ("stored", "turned", "canonical", "best")
MAX_RVQ_STAGES = 8
MAX_SPARE = 16  # a grid has at most 2N + MAX_SPARE cells
#: ``compress --adaptive-precision``'s default ``drop_fraction`` (the README: measured on plant)
DROP_FRACTION = 0.4
#: α is clipped to [ε, 1 − ε] before its logit (``opacity_space="alpha"``)
ALPHA_EPS = 1e-6

#: quality → (bits of means, sh0, shN (0 at palette levels), scales, quats, opacities, SH-rest palette size, SH-rest
#: basis rank). All grids are lossless JPEG XL; the quality trades bits. The SH rest (degree > 0
#: only) is a k-means palette of that size where it is > 0 (levels 0–4: its centroids amortise
#: over large scenes), else a shared PCA basis with that many coefficient planes of the shN bits
#: where the rank is > 0 (levels 5–7, :mod:`.basis`), else every coefficient plane (README: "SH
#: degree 3"). Bits go where renders measure them: an opacity bit buys more render quality per
#: byte than a position bit, so the ladder gives opacity 7–8 bits and positions 12–13 where SOG
#: uses 6 and 14, and stores rotations as their smallest three components (+ the index of the
#: largest). Between levels 3 and 6 a rotation bit comes before a colour bit (level 4), and
#: position, scale and opacity bits before colour's (level 5): on the bench's scenes a rotation
#: bit buys more render quality per byte than a colour bit (README: "Eighth round"). Every level
#: spends at least the bits of the one below on every attribute (``--target-*`` bisects). Along
#: the curve the levels code positions as curve keys (``means_encoding``), and rotations and
#: opacities with the order-0 ``ans`` codec instead of JPEG XL.
QUALITY_LEVELS: dict[int, tuple[int, int, int, int, int, int, int, int]] = {
    0: (11, 6, 0, 5, 5, 6, 1024, 0),
    1: (12, 6, 0, 5, 5, 6, 2048, 0),
    2: (12, 6, 0, 5, 5, 7, 4096, 0),
    3: (12, 6, 0, 6, 6, 7, 4096, 0),
    4: (12, 6, 0, 6, 7, 7, 8192, 0),
    5: (13, 6, 5, 7, 7, 8, 0, 32),
    6: (13, 7, 6, 7, 7, 8, 0, 40),
    7: (14, 8, 7, 7, 7, 8, 0, 40),
    8: (14, 8, 6, 8, 8, 9, 0, 0),
    9: (16, 10, 7, 10, 10, 10, 0, 0),
    10: (16, 16, 8, 12, 12, 12, 0, 0),
}
#: SOG (jxl_quant_sh): its bits, with f_dc as 8-bit lossless; ``quality="sog"``, the dataclass defaults
SOG_LEVEL = (14, 8, 5, 6, 6, 6, 0, 0)
QUALITY_NAMES = {"smallest": 0, "small": 2, "palette": 4, "default": 6, "high": 8, "max": 10}


@dataclass
class AttributeCoding:
    """How one attribute grid is coded: ``bits`` per channel (1..16), the image ``codec`` and,
    for ``jxl``, a Butteraugli ``distance`` (0 = lossless; > 0 lossy, ~1 visually lossless).
    ``low_bits``: how many of the low bits go in a packed stream beside the image instead of in
    it (:mod:`~splatpack.codecs.grid.lowbits`); ``None`` chooses (:func:`resolved_low_bits`)."""

    bits: int
    codec: str = "jxl"
    distance: float = 0.0
    low_bits: int | None = None


@dataclass
class GridCodecConfig:
    """Settings of a grid scene; the defaults are SOG's (``quality="sog"``, see :data:`QUALITY_LEVELS`).

    ``sort_weights`` weight the normalised, activated attribute blocks PLAS sorts by (SOG: 1 for
    ``means``, ``sh0`` and ``scales``; any of :data:`ATTRIBUTES` may be given); ``sort=False``
    keeps the input order (raster), the baseline SOG improves on. ``palette_*`` apply to
    ``sh_mode="palette"`` (``shN.codec`` codes both the label grid and the centroids there,
    always losslessly); ``rvq_*`` and ``palette_bits``/``palette_iterations`` to ``sh_mode="rvq"``;
    ``basis_rank`` to ``sh_mode="basis"`` (a shared PCA basis and that many coefficient planes
    of ``shN.bits``, :mod:`splatpack.codecs.grid.basis`).
    ``opacity_space="alpha"`` codes α = σ(o) instead of the logit, for a smaller largest α error.
    """

    means: AttributeCoding = field(default_factory=lambda: AttributeCoding(14))
    sh0: AttributeCoding = field(default_factory=lambda: AttributeCoding(8))
    shN: AttributeCoding = field(default_factory=lambda: AttributeCoding(5))
    scales: AttributeCoding = field(default_factory=lambda: AttributeCoding(6))
    quats: AttributeCoding = field(default_factory=lambda: AttributeCoding(6))
    opacities: AttributeCoding = field(default_factory=lambda: AttributeCoding(6))
    opacity_space: str = "logit"
    quats_encoding: str = "components"
    means_encoding: str = "grid"
    means_transform: str = "signed-log1p"
    sh_mode: str = "grid"
    palette_size: int = 4096
    palette_bits: int = 8
    palette_iterations: int = 10
    rvq_stages: int = 2
    rvq_size: int = 256
    basis_rank: int = 12
    sort: bool = True
    order: str = "plas"
    sort_weights: dict[str, float] = field(default_factory=lambda: {"means": 1.0, "sh0": 1.0, "scales": 1.0})
    sort_activated: bool = True
    frames: str = "stored"  # each Gaussian's local frame as coded (same covariance): see FRAMES
    jxl_effort: int = 7
    seed: int = 0
    #: per-Gaussian precision (:mod:`~splatpack.codecs.grid.lowbits`): the fraction of Gaussians,
    #: the least render-sensitive per attribute, whose low position and rotation bits are dropped
    drop_fraction: float = 0.0

    def validate(self) -> GridCodecConfig:
        """Raise :class:`SplatpackError` for an invalid setting; returns ``self``."""
        for name in ATTRIBUTES:
            _validate_coding(name, getattr(self, name))
        if self.frames not in FRAMES:
            raise SplatpackError(f"grid codec: frames must be one of {', '.join(FRAMES)}, not {self.frames!r}")
        if self.quats_encoding not in QUATS_ENCODINGS:
            raise SplatpackError(
                f"grid codec: quats_encoding must be one of {QUATS_ENCODINGS}, not {self.quats_encoding!r}"
            )
        if self.quats_encoding == "smallest-three" and self.quats.bits < 2:
            raise SplatpackError("grid codec: smallest-three quaternions need quats.bits >= 2 (the index channel)")
        if self.quats_encoding == "smallest-three" and self.quats.distance:
            # lossy JPEG XL would blur the index channel of the largest component into other indices
            raise SplatpackError("grid codec: smallest-three quaternions must be coded losslessly (quats.distance 0)")
        if self.means_transform not in MEANS_TRANSFORMS:
            raise SplatpackError(
                f"grid codec: means_transform must be one of {MEANS_TRANSFORMS}, not {self.means_transform!r}"
            )
        if self.means_encoding not in MEANS_ENCODINGS:
            raise SplatpackError(
                f"grid codec: means_encoding must be one of {MEANS_ENCODINGS}, not {self.means_encoding!r}"
            )
        if self.means_encoding == "curve-keys" and (self.order != "hilbert" or not self.sort or self.means.distance):
            raise SplatpackError(
                "grid codec: curve-keys positions need order 'hilbert', sort on and lossless positions (means.distance 0)"
            )
        if self.opacity_space not in OPACITY_SPACES:
            raise SplatpackError(
                f"grid codec: opacity_space must be one of {OPACITY_SPACES}, not {self.opacity_space!r}"
            )
        if self.order not in ORDERS:
            raise SplatpackError(f"grid codec: order must be one of {', '.join(ORDERS)}, not {self.order!r}")
        if self.sh_mode not in SH_MODES:
            raise SplatpackError(f"grid codec: sh_mode must be one of {SH_MODES}, not {self.sh_mode!r}")
        self._validate_sizes()
        if type(self.drop_fraction) not in (int, float) or not 0 <= self.drop_fraction < 1:
            raise SplatpackError(f"grid codec: drop_fraction must be in [0, 1), not {self.drop_fraction!r}")
        for name in ATTRIBUTES:
            _validate_low_bits(name, getattr(self, name), self)
        weights = self.sort_weights if isinstance(self.sort_weights, dict) else {None: None}
        if set(weights) - set(ATTRIBUTES) or any(type(w) not in (int, float) or w < 0 for w in weights.values()):
            raise SplatpackError(f"grid codec: sort_weights takes non-negative weights of {', '.join(ATTRIBUTES)}")
        return self

    def _validate_sizes(self) -> None:
        ints = (self.palette_size, self.palette_bits, self.palette_iterations, self.jxl_effort, self.seed)
        if any(type(v) is not int for v in ints):
            raise SplatpackError(
                "grid codec: palette_size, palette_bits, palette_iterations, jxl_effort and seed must be integers"
            )
        if not 1 <= self.palette_size <= 1 << 16 or not 1 <= self.palette_bits <= 16 or self.palette_iterations < 0:
            raise SplatpackError(
                "grid codec: palette_size must be in 1..65536, palette_bits in 1..16, palette_iterations >= 0"
            )
        if type(self.rvq_stages) is not int or type(self.rvq_size) is not int:
            raise SplatpackError("grid codec: rvq_stages and rvq_size must be integers")
        if not 1 <= self.rvq_stages <= MAX_RVQ_STAGES or not 1 <= self.rvq_size <= 1 << 16:
            raise SplatpackError(f"grid codec: rvq_stages must be in 1..{MAX_RVQ_STAGES}, rvq_size in 1..65536")
        if not 1 <= self.jxl_effort <= 10:
            raise SplatpackError("grid codec: jxl_effort must be in 1..10")
        if type(self.basis_rank) is not int or not 1 <= self.basis_rank <= 45:
            raise SplatpackError(f"grid codec: basis_rank must be an integer in 1..45, not {self.basis_rank!r}")

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
        means, sh0, shn, scales, quats, opac, palette, rank = SOG_LEVEL if q == "sog" else QUALITY_LEVELS[q]
        cfg = cls(
            means=AttributeCoding(means),
            sh0=AttributeCoding(sh0),
            shN=AttributeCoding(shn or 5),
            scales=AttributeCoding(scales),
            quats=AttributeCoding(quats),
            opacities=AttributeCoding(opac),
            sh_mode="palette" if palette else "basis" if rank else "grid",
            palette_size=palette or 4096,
            basis_rank=rank or 12,
            quats_encoding="components" if q == "sog" else "smallest-three",
            frames="stored" if q == "sog" else "best",
            order="plas" if q == "sog" else "hilbert",
            means_transform="signed-log1p" if q == "sog" else "auto",
        )
        if q != "sog":
            for name in ORDER0_ATTRIBUTES:
                getattr(cfg, name).codec = "ans"
        keys_given = "means_encoding" in overrides
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise SplatpackError(f"grid codec: unknown setting '{k}'")
            if k in ATTRIBUTES and isinstance(v, dict):  # from YAML: {bits: 11} over the level's coding
                try:
                    v = AttributeCoding(**{**asdict(getattr(cfg, k)), **v})
                except TypeError:
                    raise SplatpackError(
                        f"grid codec: '{k}' takes bits, codec, distance and low_bits, not {sorted(v)}"
                    ) from None
            setattr(cfg, k, v)
        if image_codec is not None:
            if image_codec not in GRID_CODECS:
                raise SplatpackError(
                    f"grid codec: image_codec must be one of {', '.join(GRID_CODECS)}, not {image_codec!r}"
                )
            for name in ATTRIBUTES:
                getattr(cfg, name).codec = image_codec
        if not keys_given and cfg.order == "hilbert" and cfg.sort and not cfg.means.distance:
            cfg.means_encoding = "curve-keys"  # the levels along the curve code positions as keys
        return cfg.validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validate_coding(name: str, c: Any) -> None:
    """Raise :class:`SplatpackError` unless ``c`` is a valid :class:`AttributeCoding` of ``name``."""
    if not isinstance(c, AttributeCoding):
        raise SplatpackError(f"grid codec: '{name}' must be an AttributeCoding, not {type(c).__name__}")
    if type(c.bits) is not int or not 1 <= c.bits <= 16:
        raise SplatpackError(f"grid codec: {name}.bits must be an integer in 1..16, not {c.bits!r}")
    if c.codec not in GRID_CODECS:
        raise SplatpackError(f"grid codec: {name}.codec must be one of {', '.join(GRID_CODECS)}, not {c.codec!r}")
    if not valid_distance(c.codec, c.distance):
        raise SplatpackError(f"grid codec: {name}.distance must be 0 (lossless), or in (0, 25] with codec jxl")


def resolved_low_bits(name: str, c: AttributeCoding, cfg: GridCodecConfig) -> int:
    """The low bits attribute ``name`` codes beside its image: ``c.low_bits`` when given; else for
    lossless positions all but the high 7 (b − 7) on a PLAS grid, the low max(3, b − 10) along
    the Hilbert curve, and for smallest-three rotations all but the high 4 (b − 4): where the
    image codec spends a bit or more on each low bit (README: the grid codec), and along the curve
    also the low b − 5 of the scales; 0 otherwise (colour and opacity low bits are predictable)."""
    if c.low_bits is not None:
        return c.low_bits
    if c.distance:
        return 0
    if name == "means" and cfg.order == "hilbert":  # smooth positions along the curve: fewer noise bits
        return max(min(3, c.bits - 1), c.bits - 10)
    if name == "means":
        return max(c.bits - 7, 0)
    if name == "scales" and cfg.order == "hilbert":  # scales of curve neighbours differ more
        return max(c.bits - 5, 0)
    if name == "quats" and cfg.quats_encoding == "smallest-three":
        return max(c.bits - 4, 0)
    return 0


def _validate_low_bits(name: str, c: AttributeCoding, cfg: GridCodecConfig) -> None:
    """Raise :class:`SplatpackError` unless ``c.low_bits`` fits ``name``'s coding."""
    if c.low_bits is None:
        return
    floor = 2 if name == "quats" and cfg.quats_encoding == "smallest-three" else 1
    if type(c.low_bits) is not int or not 0 <= c.low_bits <= c.bits - floor:
        raise SplatpackError(
            f"grid codec: {name}.low_bits must be an integer in 0..{c.bits - floor}, not {c.low_bits!r}"
        )
    if c.low_bits and (c.distance or (name == "shN" and cfg.sh_mode != "grid")):
        raise SplatpackError(f"grid codec: {name}.low_bits needs a lossless grid of values (not lossy or a palette)")


def valid_distance(codec: str, distance: Any) -> bool:
    """Whether ``distance`` is 0 (lossless), or in (0, 25] with ``jxl`` (the encoder's and reader's rule)."""
    return type(distance) in (int, float) and 0 <= distance <= 25 and not (distance and codec != "jxl")
