"""Latent-mode scene coding under a generative model (``kind: latent-grid``): Binary Latent
Diffusion's autoencoder (Wang, Wang, Liu, Qiu, CVPR 2023, §3.1) as a learned predictor of the
sorted attribute grid, and the residual coded losslessly as images.

Encode: the scene in its object frame (:func:`~splatpack.generative.grids.object_frame`) is
PLAS-sorted into an H×W grid (H, W multiples of the BAE's factor f, about square; an empty cell
holds the channel means), standardised with the model's channel statistics and encoded to binary
latents b = [σ(ℓ) > ½] (eq. 1); the decoder's grid x̂ = D(b) predicts every cell. Channel c keeps
the uniform step the grid codec's quality ladder gives its attribute, Δ_c = range_c / (2^bits − 1)
(:data:`~splatpack.codecs.grid.config.QUALITY_LEVELS`), and stores r_c = round((x_c − x̂_c) / Δ_c)
as one lossless JPEG XL image, or, where that image is larger, r_c = round((x_c − min_c) / Δ_c)
without the prediction (per-channel fallback). Decoded values are x̂_c + r_c·Δ_c (or
min_c + r_c·Δ_c): within Δ_c / 2 of the input either way, so the ladder sets the quality. With
``residual=False`` the model's channels are the prediction alone (the latents are the file: the
low-rate end of the rate–distortion curve, where the ladder has no level).

The latent bits are coded under the model's latent coder, the masked (absorbing-state) form of its
Bernoulli prior (:mod:`~splatpack.generative.bitmodel`): group by group of its decoding order
(channel groups × the phases of 2×2 blocks), each bit with p(b | groups before) through ANS
(:func:`~splatpack.generative.entropy.encode_planes`, section ``latent.ans``, with its per-plane
order-0 fallbacks in the meta). Where that is not smaller, or the model has no coder, they are
stored packed (deflate, section ``latent.bits``), at most one bit each (H·W·bits / (8 f²) bytes).
Channels the model does not have (the SH rest, for a degree-0 model) always take the
fallback. The predictor's float convolutions may round differently on another machine; that moves
a decoded value by that rounding, not by a step.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid.config import ATTRIBUTES, QUALITY_LEVELS, QUALITY_NAMES
from splatpack.codecs.grid.decode import checked_int
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.core.sh import num_sh_bases
from splatpack.core.validate import validate_gaussians
from splatpack.generative.bitmodel import coding_copy
from splatpack.generative.entropy import decode_planes, encode_planes
from splatpack.generative.grids import (
    ObjectFrame,
    cells_to_gaussians,
    from_object_frame,
    object_frame,
    sorted_grid,
    to_object_frame,
)
from splatpack.generative.model import SHIPPED_MODEL, VERSION, GenerativeModel
from splatpack.spk.arrays import CodecError, decode_array, encode_array
from splatpack.spk.container import Section, SpkError

__all__ = [
    "FORMAT_KIND",
    "LATENT_SCENE_CODEC",
    "LatentCodecConfig",
    "LatentSceneCodec",
    "grid_latents",
    "latent_grid_shape",
    "latent_prediction",
    "load_generative_model",
    "residual_section",
]

FORMAT_KIND = "latent-grid"
FORMAT_VERSION = 1
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_OFFSET = 2**31
#: the sections of the latent bits: packed, or coded under the model's latent coder
PACKED_SECTION, CODED_SECTION = "latent.bits", "latent.ans"
#: the grid codec's attribute of each model channel (:func:`~splatpack.generative.grids.grid_channels`); the SH rest follows
_ATTRIBUTES = ("means",) * 3 + ("scales",) * 3 + ("quats",) * 4 + ("opacities",) + ("sh0",) * 3


def _attribute(c: int) -> str:
    return _ATTRIBUTES[c] if c < len(_ATTRIBUTES) else "shN"


def residual_section(c: int) -> str:
    """The section of channel c's residual image: ``latent.<attribute>.<c>``."""
    return f"latent.{_attribute(c)}.{c}"


@dataclass(frozen=True)
class LatentCodecConfig:
    """``model``: a generative model file (default: the shipped one; a file decodes only where a
    model of that name and digest is shipped); ``quality``: the grid codec's ladder level (or
    name) whose bits set each channel's step; ``seed``: the PLAS seed."""

    model: str | Path = SHIPPED_MODEL
    quality: int | str = 6
    seed: int = 0
    jxl_effort: int = 7
    residual: bool = True

    def level(self) -> int:
        q = self.quality
        if isinstance(q, str):
            q = int(q) if q.isdigit() else QUALITY_NAMES.get(q, q)
        if type(q) is not int or q not in QUALITY_LEVELS:
            raise SplatpackError(f"latent codec: quality must be 0..10 or a name ({', '.join(QUALITY_NAMES)})")
        return q


def latent_grid_shape(n: int, factor: int) -> tuple[int, int]:
    """(H, W) of the grid of n Gaussians: sides multiples of f, W from f·⌈√n / f⌉ up to twice
    that, H = f·⌈n / (W f)⌉; the fewest empty cells (then the squarest)."""
    if n < 1:
        raise ValueError("a latent grid holds at least one Gaussian")
    w0 = factor * math.ceil(math.sqrt(n) / factor)
    shapes = [(factor * math.ceil(n / (w * factor)), w) for w in range(w0, 2 * w0 + 1, factor)]
    return min(shapes, key=lambda hw: (hw[0] * hw[1], hw[1]))


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> GenerativeModel:
    return GenerativeModel.load(path).eval()


def load_generative_model(path: str | Path) -> GenerativeModel:
    """The generative model file at ``path`` (cached per file and modification time)."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise SplatpackError("no such generative model file", path) from None
    return _load(str(path), mtime)


def _steps(values: torch.Tensor, level: int) -> np.ndarray:
    """Δ_c [C] float64: each channel's range over (2^bits − 1) at the ladder's ``level``."""
    row = dict(zip(ATTRIBUTES, QUALITY_LEVELS[level]))
    row["shN"] = row["shN"] or row["sh0"]  # 0: a palette level; the residual takes colour's bits
    c = values.shape[0]
    bits = [row[_attribute(i)] for i in range(c)]
    flat = values.reshape(c, -1).double()
    span = (flat.max(1).values - flat.min(1).values).numpy()
    return np.maximum(span, 1e-12) / (2.0 ** np.asarray(bits, dtype=np.float64) - 1)


def _image(r: np.ndarray, effort: int) -> bytes:
    """Lossless JPEG XL of non-negative integers [H, W] (u8 or u16 by their largest value)."""
    top = int(r.max())
    if top < 256:
        return encode_array(r.astype(np.uint8), "jxl", bits=max(1, top.bit_length()), effort=effort)
    return encode_array(r.astype(np.uint16), "jxl", bits=max(9, top.bit_length()), effort=effort)


def grid_latents(model: GenerativeModel, grid: torch.Tensor) -> np.ndarray:
    """The binary latents [bits, h, w] uint8 of a grid [C_model, H, W]."""
    with torch.no_grad():
        return model.bae.encode(model.stats.standardise(grid.float())[None])[0].to(torch.uint8).numpy()


def latent_prediction(model: GenerativeModel, grid: np.ndarray) -> np.ndarray:
    """x̂ = D(E(x)): the model's prediction of a grid [C_model, H, W] (float64)."""
    return _prediction(model, grid_latents(model, torch.from_numpy(grid)))


def _prediction(model: GenerativeModel, bits: np.ndarray) -> np.ndarray:
    """x̂ = D(b): the grid [C_model, H, W] float64 the latents [bits, h, w] decode to."""
    with torch.no_grad():
        grid = model.bae.decode(torch.from_numpy(bits.astype(np.float32))[None])[0]
        return model.stats.restore(grid).double().numpy()


def _latent_bits_section(model: GenerativeModel, bits: np.ndarray) -> tuple[Section, dict]:
    """The latents [bits, h, w] as a section: coded under the model's latent coder where that
    is smaller than packing them, with its meta entry (``bits``, ``static``); else packed."""
    packed = Section(PACKED_SECTION, "deflate", encode_array(np.packbits(bits.reshape(-1)), "deflate"))
    if model.coder is None:
        return packed, {}
    coded = encode_planes(coding_copy(model.coder), bits)
    words = np.frombuffer(coded.words, "<u4").astype(np.uint32)
    section = Section(CODED_SECTION, "raw", encode_array(words, "raw"))
    static = {str(k): v for k, v in coded.static.items()}
    if len(section.payload) + len(json.dumps(static)) >= len(packed.payload):
        return packed, {}
    return section, {"bits": "coder", "static": static}


class LatentSceneCodec:
    """Latent-mode coding (see the module) as a :class:`~splatpack.codecs.base.SceneCodec`."""

    kind = FORMAT_KIND

    def encode(self, gs: GaussianSet, config: LatentCodecConfig | None = None) -> EncodedScene:
        config = config or LatentCodecConfig()
        validate_gaussians(gs)
        level = config.level()
        model = load_generative_model(config.model)
        name = Path(config.model).stem
        if not MODEL_NAME.fullmatch(name):
            raise SplatpackError(f"a model's file name must match {MODEL_NAME.pattern}", config.model)
        layout = model.config.layout
        if layout.sh_degree != 0:
            raise SplatpackError("latent coding takes models of SH degree 0 (their grids' 14 channels)", config.model)
        factor = model.bae.config.factor
        frame = object_frame(gs)
        n = len(gs)
        h, w = latent_grid_shape(n, factor)
        grid, index = sorted_grid(to_object_frame(gs, frame), (h, w), gs.sh_degree, config.seed)
        grid = grid.double()
        c_model = layout.channels
        bits = grid_latents(model, grid[:c_model])
        pred = _prediction(model, bits)
        steps = _steps(grid, level)
        sections, channels = [], []
        for c in range(grid.shape[0]):
            if c < c_model and not config.residual:
                channels.append({"predicted": True, "residual": False})
                continue
            x = grid[c].numpy()
            options = [("raw", x.min())]
            if c < c_model:
                options.insert(0, ("predicted", None))
            best = None
            for kind, low in options:
                base = pred[c] if kind == "predicted" else np.full_like(x, low)
                r = np.rint((x - base) / steps[c]).astype(np.int64)
                offset = int(r.min())
                if r.max() - offset >= 2**16 or abs(offset) >= MAX_OFFSET:
                    continue  # a prediction too far off for 16-bit residuals: the fallback
                payload = _image(r - offset, config.jxl_effort)
                if best is None or len(payload) < len(best[0]):
                    entry = {"step": float(steps[c]), "offset": offset, "predicted": kind == "predicted"}
                    best = (payload, entry | ({} if kind == "predicted" else {"low": float(low)}))
            sections.append(Section(residual_section(c), "jxl", best[0]))
            channels.append(best[1])
        bits_section, bits_entry = _latent_bits_section(model, bits)
        sections.append(bits_section)
        empty = np.flatnonzero(index.reshape(-1) < 0).astype(np.int32)
        if empty.size:
            sections.append(Section("latent.empty", "deflate", encode_array(empty, "deflate")))
        meta = {
            "kind": FORMAT_KIND,
            "format_version": FORMAT_VERSION,
            "latent": {"model": name, "sha256": model.content_hash, "version": VERSION, **bits_entry},
            "quality": level,
            "frame": {"centre": list(frame.centre), "radius": frame.radius},
            "grid": {"height": h, "width": w},
            "sh_degree": gs.sh_degree,
            "channels": channels,
        }
        return EncodedScene(sections, meta, n)

    def decode(self, reader) -> GaussianSet:
        m, n, path = reader.meta, reader.num_gaussians, reader.path
        try:
            if checked_int(m.get("format_version"), 1, 1, "latent format version") != FORMAT_VERSION:
                raise ValueError("latent format version")
            entry = m["latent"]
            name = entry["model"]
            if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
                raise ValueError("model name")
            degree = checked_int(m["sh_degree"], 0, 3, "SH degree")
            centre = [float(v) for v in m["frame"]["centre"]]
            radius = float(m["frame"]["radius"])
            if len(centre) != 3 or not all(map(math.isfinite, [*centre, radius])) or not radius > 0:
                raise ValueError("object frame")
            channels = m["channels"]
            if not isinstance(channels, list) or len(channels) != 14 + 3 * (num_sh_bases(degree) - 1):
                raise ValueError("channel list")
            coded_bits = entry.get("bits", "packed")
            if coded_bits not in ("packed", "coder"):
                raise ValueError("latent bits coding")
            static = {int(k): v for k, v in entry.get("static", {}).items()}
            if any(type(v) is not int for v in static.values()):
                raise ValueError("static plane table")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpkError(f"malformed latent-grid header ({type(exc).__name__}: {exc})", path) from None
        shipped = SHIPPED_MODEL.with_name(f"{name}.pt")
        try:
            model = load_generative_model(shipped)
        except SplatpackError:
            raise SpkError(f"coded with generative model '{name}', which this splatpack does not have", path) from None
        if entry.get("sha256") != model.content_hash or entry.get("version") != VERSION:
            raise SpkError(
                f"coded with generative model '{name}' (sha256 {str(entry.get('sha256'))[:12]}…); this "
                f"splatpack's differs (sha256 {model.content_hash[:12]}…)",
                path,
            )
        factor = model.bae.config.factor
        if n < 1:
            raise SpkError("a latent-grid file holds at least one Gaussian", path)
        h, w = latent_grid_shape(n, factor)
        grid = m.get("grid")
        if not isinstance(grid, dict) or grid.get("height") != h or grid.get("width") != w:
            raise SpkError(f"the grid of {n} Gaussians must be {h}x{w}", path)

        def read(section: str, shape: tuple[int, ...], dtypes: tuple[type, ...]) -> np.ndarray:
            if not reader.has(section):
                raise SpkError(f"section '{section}' is missing", path)
            codec = reader.info(section).codec
            for dtype in dtypes:
                try:
                    return decode_array(reader.read(section), codec, section, shape=shape, dtype=dtype)
                except CodecError as exc:
                    error = exc
            raise SpkError(str(error), path) from None

        c_model = model.config.layout.channels
        bits_shape = model.bae.latent_shape(h, w)
        if coded_bits == "packed":
            packed = read(PACKED_SECTION, ((math.prod(bits_shape) + 7) // 8,), (np.uint8,))
            bits = np.unpackbits(packed)[: math.prod(bits_shape)].reshape(bits_shape)
        elif model.coder is None:
            raise SpkError(f"its latents are coded by a latent coder, which model '{name}' lacks", path)
        else:
            if not reader.has(CODED_SECTION) or reader.info(CODED_SECTION).codec != "raw":
                raise SpkError(f"section '{CODED_SECTION}' is missing or not raw", path)
            most = math.prod(bits_shape) // 2 + 16  # a bit costs at most 16 bits (its probability's steps)
            try:
                words = decode_array(reader.read(CODED_SECTION), "raw", CODED_SECTION, most, dtype=np.uint32)
                bits = decode_planes(
                    coding_copy(model.coder), words.reshape(-1).astype("<u4").tobytes(), *bits_shape[1:], static=static
                )
            except (CodecError, SplatpackError) as exc:
                raise SpkError(str(exc), path) from None
        pred = (
            _prediction(model, bits) if any(isinstance(ch, dict) and ch.get("predicted") for ch in channels) else None
        )
        values = np.empty((len(channels), h, w))
        for c, ch in enumerate(channels):
            if not isinstance(ch, dict):
                raise SpkError(f"malformed latent-grid channel {c}", path)
            if ch == {"predicted": True, "residual": False} and c < c_model:
                values[c] = pred[c]
                continue
            try:
                step, offset, predicted = float(ch["step"]), ch["offset"], ch["predicted"]
                if type(offset) is not int or abs(offset) >= MAX_OFFSET or not isinstance(predicted, bool):
                    raise ValueError("offset or predicted flag")
                if not (math.isfinite(step) and step > 0) or (predicted and c >= c_model):
                    raise ValueError("step")
                low = 0.0 if predicted else float(ch["low"])
                if not math.isfinite(low):
                    raise ValueError("low")
            except (KeyError, TypeError, ValueError) as exc:
                raise SpkError(f"malformed latent-grid channel {c} ({type(exc).__name__}: {exc})", path) from None
            r = read(residual_section(c), (h, w), (np.uint8, np.uint16)).astype(np.float64) + offset
            with np.errstate(over="ignore", invalid="ignore"):  # a huge step: refused below as not finite
                values[c] = (pred[c] if predicted else low) + r * step
        empty = np.zeros(0, dtype=np.int64)
        if h * w > n:
            empty = read("latent.empty", (h * w - n,), (np.int32,)).astype(np.int64)
            if (np.diff(empty) <= 0).any() or empty[0] < 0 or empty[-1] >= h * w:
                raise SpkError("section 'latent.empty' must hold increasing cells of the grid", path)
        keep = np.ones(h * w, dtype=bool)
        keep[empty] = False
        cells = torch.from_numpy(values.reshape(len(channels), -1).T[keep])
        if not torch.isfinite(cells).all():
            raise SpkError("decoded values are not finite", path)
        return from_object_frame(cells_to_gaussians(cells, degree), ObjectFrame(tuple(centre), radius))

    def gaussians(self, decoded: GaussianSet) -> GaussianSet:
        return decoded


LATENT_SCENE_CODEC = LatentSceneCodec()
