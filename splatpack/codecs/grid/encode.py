"""The grid-scene encoder: a :class:`~splatpack.core.GaussianSet` → ``.spk`` sections and meta
(steps 1–5 of :mod:`splatpack.codecs.grid`).

Each attribute is quantised per channel (:func:`~splatpack.compress.quantise.quantise_channels`),
laid out on the sorted grid (:mod:`~splatpack.codecs.grid.layout`) and coded as one image
section; the SH rest may instead be a palette or a residual VQ
(:mod:`~splatpack.codecs.grid.palette`). Which cells are empty is stored explicitly
(``grid.empty``, the sorted raster indices).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from splatpack.codecs.grid.basis import basis_coefficients
from splatpack.codecs.grid.config import (
    ATTRIBUTES,
    FORMAT_KIND,
    FORMAT_VERSION,
    MAX_SPARE,
    AttributeCoding,
    GridCodecConfig,
    resolved_low_bits,
)
from splatpack.codecs.grid.curve_keys import gap_streams
from splatpack.codecs.grid.layout import GridCells, ImageLayout, packed_planes
from splatpack.codecs.grid.lowbits import gaussian_drops, pack_low_bits, shared_drop_class
from splatpack.codecs.grid.palette import fit_palette, fit_residual_palette, label_bits
from splatpack.codecs.grid.qat import quantised_quats
from splatpack.codecs.grid.sort import sort_scene
from splatpack.codecs.grid.values import coded_values, float64_numpy, quantised_channels, resolved_positions
from splatpack.compress.curve_order import hilbert_key
from splatpack.compress.quantise import channel_range, fake_quantise, quantise_channels, smallest_three
from splatpack.compress.sensitivity import render_sensitivity
from splatpack.core.errors import SplatpackError
from splatpack.core.frames import canonical_gaussians
from splatpack.render.projection import covariance_3d
from splatpack.spk.arrays import CodecError, encode_array
from splatpack.spk.container import Section

__all__ = [
    "best_frames",
    "check_grid_index",
    "code_attribute",
    "code_attributes",
    "coded_sensitivity",
    "encode_grid_scene",
    "frame_distortion",
    "grid_attribute_bytes",
    "grid_scene_parts",
    "keep_canonical",
    "lattice_ranges",
    "scene_drops",
    "scene_grid",
]

#: what a coded attribute is: its sections and its meta entry
Coded = tuple[list[Section], dict[str, Any]]


def check_grid_index(grid_index, n: int) -> np.ndarray:
    """``grid_index`` as int64 [H, W], checked to hold each of the n Gaussians once (−1 = empty)."""
    gi = np.asarray(grid_index)
    if gi.ndim != 2 or gi.size == 0 or gi.dtype.kind not in "iu":
        raise SplatpackError(f"grid_index must be a non-empty 2-D integer array, not {gi.dtype} {gi.shape}")
    gi = gi.astype(np.int64)
    if gi.size > 2 * n + MAX_SPARE:
        raise SplatpackError(
            f"a {gi.shape[0]}x{gi.shape[1]} grid is too large for {n} Gaussians (at most 2N + {MAX_SPARE} cells)"
        )
    occ = gi[gi >= 0]
    if (gi < -1).any() or occ.size != n or not np.array_equal(np.sort(occ), np.arange(n)):
        raise SplatpackError(f"grid_index must hold each of the {n} Gaussians exactly once (−1 for an empty cell)")
    return gi


def image_section(name: str, planes: np.ndarray, layout: ImageLayout, effort: int) -> Section:
    """Section ``name``: [P, H, W, c] integer planes as one image coded by ``layout``."""
    try:
        return Section(name, layout.codec, layout.encode(layout.to_image(planes), effort))
    except CodecError as exc:
        raise SplatpackError(f"cannot code '{name}': {exc}") from None


def grid_section(
    name: str, q: np.ndarray, cells: GridCells, planes: int, channels: int, layout: ImageLayout, effort: int
) -> Section:
    """Section ``name``: q [N, planes*channels] on the grid as ``planes`` tiles of ``channels``."""
    return image_section(name, cells.planes(q, planes, channels), layout, effort)


def code_attribute(
    name: str,
    t: np.ndarray,
    cells: GridCells,
    cfg: GridCodecConfig,
    shn_codebooks=None,
    drops=None,
    shared_drops: bool = False,
    ranges=None,
) -> Coded:
    """The sections and the meta entry of attribute ``name`` with coded values t [N, C];
    ``drops``: per attribute, the low bits k [N] each Gaussian drops
    (:func:`~.lowbits.gaussian_drops`; none where absent), ``shared_drops``: they are one class's
    (:func:`~.lowbits.shared_drop_class`, the scene's ``grid.drop``) rather than a plane each;
    ``ranges``: per attribute, the (lo, hi) to quantise over instead of its own
    (:func:`~splatpack.compress.quantise.channel_range`); for a basis-coded SH rest
    (lo, hi, table), its generator too (:func:`~.basis.basis_coefficients`); for a palette
    (lo, hi, labels), its labels too (:func:`~.palette.fit_palette`)."""
    coding: AttributeCoding = getattr(cfg, name)
    if name == "shN" and cfg.sh_mode in ("palette", "rvq"):
        return _code_sh_codes(t, cells, cfg, shn_codebooks, None if ranges is None else ranges.get("shN"))
    if name == "shN" and cfg.sh_mode == "basis":
        return _code_sh_basis(t, cells, cfg, None if ranges is None else ranges.get("shN"))
    entry = {"bits": coding.bits, "codec": coding.codec, "distance": float(coding.distance)}
    r = resolved_low_bits(name, coding, cfg)
    layout = ImageLayout(coding.codec, coding.bits - r, coding.distance)
    drop = None if drops is None else drops.get(name)
    fixed = (None, None) if ranges is None or name not in ranges else ranges[name]
    if name == "means" and cfg.means_encoding == "curve-keys":
        coded = _code_curve_keys(t, cells, cfg, r, drop, entry, shared_drops, fixed)
        if coded is not None:
            return coded
    if name == "quats" and cfg.quats_encoding == "smallest-three":
        small, largest = smallest_three(t)
        q, lo, hi = quantise_channels(small, coding.bits, *fixed)
        high, low_secs, low_entry = _split_low_bits(name, q, r, drop, cells, cfg, shared_drops)
        q = np.concatenate([high, largest[:, None].astype(np.uint16)], 1)
        sec = grid_section("grid.quats", q, cells, 1, 4, layout, cfg.jxl_effort)
        return [sec, *low_secs], {
            **entry,
            "encoding": "smallest-three",
            "lo": lo.tolist(),
            "hi": hi.tolist(),
            **low_entry,
        }
    q, lo, hi = quantise_channels(t, coding.bits, *fixed)
    high, low_secs, low_entry = _split_low_bits(name, q, r, drop, cells, cfg, shared_drops)
    channels = 3 if name == "shN" else t.shape[1]
    sec = grid_section(f"grid.{name}", high, cells, t.shape[1] // channels, channels, layout, cfg.jxl_effort)
    extra = {"mode": "grid"} if name == "shN" else {}
    return [sec, *low_secs], {**entry, "lo": lo.tolist(), "hi": hi.tolist(), **extra, **low_entry}


def _split_low_bits(name: str, q, r: int, drop, cells: GridCells, cfg: GridCodecConfig, shared: bool = False):
    """(the high bits [N, C] for the image, the low-bit sections, their meta entries) of the
    quantised q [N, C] (:mod:`~splatpack.codecs.grid.lowbits`); ``drop`` [N] (or None): the low
    bits each Gaussian drops, at most r; ``shared``: 0 or one depth k, the class in the scene's
    ``grid.drop`` (meta ``drop: k``) instead of a plane ``grid.<name>.drop`` (``drop: true``)."""
    if r == 0:
        return q, [], {}
    coding: AttributeCoding = getattr(cfg, name)
    if drop is not None and (len(drop) != len(q) or int(np.max(drop, initial=0)) > r):
        raise SplatpackError(f"grid codec: {name} drops must be {len(q)} depths of at most {r} bits")
    d = np.zeros(len(cells.order), np.uint8) if drop is None else drop[cells.order]
    packed = pack_low_bits((q & ((1 << r) - 1))[cells.order], d, r)
    sections = [Section(f"grid.{name}.low", "raw", encode_array(packed, "raw"))]
    entry: dict[str, Any] = {"low_bits": r}
    if d.any() and shared:
        entry["drop"] = int(d.max())
    elif d.any():
        layout = ImageLayout(coding.codec, r.bit_length())
        drop_section = grid_section(
            f"grid.{name}.drop", drop[:, None].astype(np.uint16), cells, 1, 1, layout, cfg.jxl_effort
        )
        sections.insert(0, drop_section)
        entry["drop"] = True
    return (q >> r).astype(np.uint16), sections, entry


def _code_curve_keys(
    t: np.ndarray,
    cells: GridCells,
    cfg: GridCodecConfig,
    r: int,
    drop,
    entry: dict,
    shared_drops: bool = False,
    fixed=(None, None),
) -> Coded | None:
    """Positions t [N, 3] as the gaps of their high bits' Hilbert keys in grid order
    (:mod:`.curve_keys`) and their low-bit stream (quantised over ``fixed`` = (lo, hi) where
    given); None when the grid is not in their key order (:func:`~.curve_keys.curve_key_order`
    laid as a snake, what :func:`scene_grid` makes; a grid given for another config is not),
    where the caller codes them as an image."""
    if cells.snake is None:
        return None
    bits = cfg.means.bits
    q, lo, hi = quantise_channels(t, bits, *fixed)
    keys = hilbert_key((q[cells.snake] >> r).astype(np.int64), bits - r)
    if (keys[1:] < keys[:-1]).any():
        return None
    _, low_secs, low_entry = _split_low_bits(
        "means", q, r, drop, cells, cfg, shared_drops
    )  # the keys hold the high bits
    lengths, packed = gap_streams(keys)
    sections = [
        Section("grid.means.lengths", "ans", encode_array(lengths[:, None], "ans")),
        Section("grid.means.rest", "raw", encode_array(packed, "raw")),
        *low_secs,
    ]
    return sections, {**entry, "encoding": "curve-keys", "lo": lo.tolist(), "hi": hi.tolist(), **low_entry}


def _code_sh_codes(t: np.ndarray, cells: GridCells, cfg: GridCodecConfig, shn_codebooks=None, lattice=None) -> Coded:
    """The SH rest as a palette (on the fixed ``lattice`` (lo, hi, labels) where given) or a
    residual VQ: label planes and codebooks, always lossless."""
    codec = cfg.shN.codec
    if cfg.sh_mode == "palette":
        labels, cq, lo, hi = fit_palette(t, cfg, lattice)
        stages, k = 1, cq.shape[0]
        labels = labels[:, None]
    else:
        labels, cq, lo, hi = fit_residual_palette(t, cfg, shn_codebooks)
        stages, k = cq.shape[:2]
    lbits = label_bits(k)
    labels_section = grid_section(
        "grid.shN.labels", labels, cells, stages, 1, ImageLayout(codec, lbits), cfg.jxl_effort
    )
    centroids = cq.reshape(1, stages * k, -1, 3)
    centroids_section = image_section(
        "grid.shN.centroids", centroids, ImageLayout(codec, cfg.palette_bits), cfg.jxl_effort
    )
    secs = [labels_section, centroids_section]
    entry = {
        "mode": cfg.sh_mode,
        **({"stages": stages} if cfg.sh_mode == "rvq" else {}),
        "size": k,
        "label_bits": lbits,
        "bits": cfg.palette_bits,
        "codec": codec,
        "distance": 0.0,
    }
    return secs, {**entry, "lo": lo.reshape(-1).tolist(), "hi": hi.reshape(-1).tolist()}


def _code_sh_basis(t: np.ndarray, cells: GridCells, cfg: GridCodecConfig, lattice=None) -> Coded:
    """The SH rest as a low-rank generator (:mod:`~splatpack.codecs.grid.basis`): r coefficient
    planes of ``shN.bits`` sharing one step, and the deflated float32 mean and basis (``lattice``:
    a fixed (lo, hi, table) instead of the fitted ones). Where some Gaussians' SH rest is exactly
    zero (:func:`~splatpack.compress.sh_basis.zeroed_sh_rest`), a bit mask marks them and only the
    others' coefficients are coded."""
    coding = cfg.shN
    layout = ImageLayout(coding.codec, coding.bits, coding.distance)
    zero = ~np.asarray(t).any(axis=1)[cells.order]  # raster order: SH rests that are exactly zero
    sparse = bool(zero.any() and not zero.all())
    q, lo, hi, table = basis_coefficients(t[cells.order[~zero]] if sparse else t, cfg.basis_rank, coding.bits, lattice)
    if sparse:  # only the others' coefficients, packed: grid neighbours do not predict them
        planes = packed_planes(q, cells.width, q.shape[1], 1)
        coefs = image_section("grid.shN.coefs", planes, layout, cfg.jxl_effort)
    else:
        coefs = grid_section("grid.shN.coefs", q, cells, q.shape[1], 1, layout, cfg.jxl_effort)
    secs = [coefs, Section("grid.shN.basis", "deflate", encode_array(table, "deflate"))]
    entry = {"mode": "basis", "rank": q.shape[1], "bits": coding.bits, "codec": coding.codec}
    if sparse:
        secs.append(Section("grid.shN.zero", "deflate", encode_array(np.packbits(zero), "deflate")))
        entry["zero"] = int(zero.sum())
    return secs, {**entry, "distance": float(coding.distance), "lo": lo.tolist(), "hi": hi.tolist()}


def code_attributes(
    jobs, cells: GridCells, cfg: GridCodecConfig, shn_codebooks=None, drops=None, shared_drops=False, ranges=None
) -> list[Coded]:
    """:func:`code_attribute` of every ``(name, t)`` of ``jobs``, in order, on a thread per core:
    the planes are independent and the image codecs release the GIL while they code, so the
    bytes are those of one after another."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [code_attribute(name, t, cells, cfg, shn_codebooks, drops, shared_drops, ranges) for name, t in jobs]
    with ThreadPoolExecutor(workers, thread_name_prefix="grid-code") as pool:
        futures = [
            pool.submit(code_attribute, name, t, cells, cfg, shn_codebooks, drops, shared_drops, ranges)
            for name, t in jobs
        ]
        return [f.result() for f in futures]


def _frame_bytes(coded: dict[str, Coded]) -> int:
    return sum(len(sec.payload) for name in ("scales", "quats") for sec in coded[name][0])


def scene_grid(
    gs, cfg: GridCodecConfig | None = None, canonical=None, means_range=None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The grid index [H, W] :func:`encode_grid_scene` sorts ``gs`` into and the meta's ``sort``
    entry: :func:`sort_scene` (PLAS on the canonical frames, ordered scales being a better
    feature, unless ``cfg.frames`` is ``stored``; or the Hilbert curve of the positions, which
    frames do not change); ``canonical``: those frames, when already computed. It depends on
    the sort settings only (and with ``means_encoding`` "curve-keys" on the position bits, whose
    key order it is), so one index serves every level of a ladder that shares them.
    ``means_range``: the (lo, hi) the positions' keys quantise over (:func:`lattice_ranges`)."""
    cfg = (cfg or GridCodecConfig()).validate()
    if cfg.frames != "stored":
        gs = canonical if canonical is not None else canonical_gaussians(gs)
    grid_index, stats = sort_scene(gs, cfg, means_range=means_range)
    sort_info = {
        "sorted": bool(cfg.sort and len(gs) >= 16),
        "order": cfg.order,
        "passes": int(stats["passes"]),
        "weights": dict(cfg.sort_weights),
        "activated": cfg.sort_activated,
    }
    return grid_index, sort_info


def frame_distortion(values: dict[str, np.ndarray], cfg: GridCodecConfig) -> float:
    """The mean relative squared error ‖Σ̂ − Σ‖²_F / ‖Σ‖²_F of the covariances that the coded
    scales and rotations ``values`` (of :func:`~.values.coded_values`, in one frame choice)
    decode to with ``cfg``'s bits (as quantisation-aware training renders them, :mod:`.qat`),
    before any low bits are dropped."""
    scales, quats = torch.from_numpy(values["scales"]), torch.from_numpy(values["quats"])
    sigma = covariance_3d(quats, scales.exp())
    sigma_hat = covariance_3d(quantised_quats(quats, cfg), fake_quantise(scales, cfg.scales.bits).exp())
    norm = (sigma * sigma).sum((1, 2)).clamp_min(1e-300)
    return float((((sigma_hat - sigma) ** 2).sum((1, 2)) / norm).mean())


def keep_canonical(turned: dict[str, np.ndarray], canonical: dict[str, np.ndarray], extra_bytes: int, cfg) -> bool:
    """Whether ``frames="best"`` keeps the canonical frames: by rate and distortion, not bytes
    alone. The two frame choices code the same covariances with different errors
    (:func:`frame_distortion`) at different sizes; the canonical ones are kept when the bytes they
    cost more (``extra_bytes``, negative when they cost less) are fewer than what buying the same
    error reduction with bits would cost: at high rate an extra bit on each of the C coded scale
    and rotation channels divides the squared error by 4 (6.02 dB per bit), so a distortion ratio
    ρ is worth N·C·½·log₂ρ bits."""
    d_turned, d_canonical = frame_distortion(turned, cfg), frame_distortion(canonical, cfg)
    if min(d_turned, d_canonical) <= 0:
        return extra_bytes < 0
    channels = 3 + (3 if cfg.quats_encoding == "smallest-three" else 4)
    worth = len(turned["scales"]) * channels * 0.5 * np.log2(d_turned / d_canonical) / 8
    return extra_bytes < worth


def best_frames(turned, canonical, cells: GridCells, cfg: GridCodecConfig) -> str:
    """``"turned"`` or ``"canonical"``: the frames in which the scales and rotations of the scene
    (given in both, :func:`~splatpack.core.frames.canonical_gaussians`) code better with ``cfg``
    on the grid ``cells`` (:func:`keep_canonical`; what ``frames="best"`` keeps)."""
    v_turned, v_canonical = coded_values(turned, cfg), coded_values(canonical, cfg)
    extra = _frame_bytes(_code_frames(v_canonical, cells, cfg)) - _frame_bytes(_code_frames(v_turned, cells, cfg))
    return "canonical" if keep_canonical(v_turned, v_canonical, extra, cfg) else "turned"


def _code_frames(values: dict[str, np.ndarray], cells: GridCells, cfg: GridCodecConfig) -> dict[str, Coded]:
    """The scales and rotations of ``values`` coded on ``cells``."""
    return {a: code_attribute(a, values[a], cells, cfg) for a in ("scales", "quats")}


def encode_grid_scene(
    gs,
    cfg: GridCodecConfig | None = None,
    grid_index=None,
    shn_codebooks=None,
    sort_info=None,
    drops=None,
    ranges=None,
) -> tuple[list, dict[str, Any]]:
    """A :class:`~splatpack.core.GaussianSet` → (``.spk`` sections, meta) of a grid scene.

    ``grid_index`` [H, W] (each Gaussian once, −1 = empty) skips the sort; otherwise
    :func:`scene_grid` computes it. ``sort_info``: the meta's ``sort`` entry of a given index
    (:func:`scene_grid`'s, so that the file is byte for byte the one the sort would write;
    default ``{"grid_index": "given"}``). ``shn_codebooks`` [S, K, 3(K_sh−1)]
    (``sh_mode="rvq"``): the residual codebooks training learned, instead of fitting new ones.
    ``drops``: per attribute, the low bits k [N] each Gaussian drops, instead of those
    ``cfg.drop_fraction`` picks by render sensitivity (:func:`coded_sensitivity`,
    :func:`scene_drops`), and ``ranges``: per attribute, the (lo, hi) its channels are
    quantised over (:func:`lattice_ranges`; the positions' curve keys too): what
    quantisation-aware refinement trained with. See :mod:`splatpack.codecs.grid` for the steps.
    """
    cfg = (cfg or GridCodecConfig()).validate()
    n = len(gs)
    if n == 0:
        raise SplatpackError("cannot encode an empty scene as a grid")
    cfg = resolved_positions(gs, cfg)
    if drops is None and cfg.drop_fraction:
        drops = scene_drops(gs, cfg)
    canonical = canonical_gaussians(gs) if cfg.frames != "stored" else None
    if cfg.frames in ("turned", "best"):
        gs = canonical_gaussians(gs, order_scales=False)
    elif cfg.frames == "canonical":
        gs = canonical
    values = coded_values(gs, cfg)
    drop_class = shared_drop_class(drops) if drops else None
    if grid_index is None:
        grid_index, sort_info = scene_grid(gs, cfg, canonical, (ranges or {}).get("means"))
    sort_info = sort_info or {"grid_index": "given"}
    gi = check_grid_index(grid_index, n)
    cells = GridCells.of(gi)
    names = [name for name in ATTRIBUTES if name in values]
    jobs = [(name, values[name]) for name in names]
    frames = "turned" if cfg.frames == "best" else cfg.frames
    if cfg.frames == "best":
        # the canonical frames (scales decreasing) code smaller where a splat's frames are random,
        # the given ones where training's splits left siblings in one frame; the error differs too
        alt = coded_values(canonical, cfg)
        jobs += [(name, alt[name]) for name in ("scales", "quats")]
    if ranges is not None and cfg.frames == "best":
        raise SplatpackError("grid codec: fixed ranges need one frame choice ('turned' or 'canonical'), not 'best'")
    results = code_attributes(jobs, cells, cfg, shn_codebooks, drops, drop_class is not None, ranges)
    coded = dict(zip(names, results))
    if cfg.frames == "best":
        alt_coded = dict(zip(("scales", "quats"), results[len(names) :]))
        if keep_canonical(values, alt, _frame_bytes(alt_coded) - _frame_bytes(coded), cfg):
            coded.update(alt_coded)
            frames = "canonical"
    return grid_scene_parts(coded, gi, cells, int(gs.sh_degree), cfg, sort_info, frames, drop_class)


def lattice_ranges(gs, cfg: GridCodecConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per attribute of ``gs`` (in ``cfg``'s frames: 'turned' or 'canonical') with a channel on a
    lattice the quantiser codes exactly (:func:`~splatpack.compress.quantise.channel_range`), the
    (lo, hi) of its channels: quantisation-aware refinement renders on that grid and the file is
    coded on it, so values that start exact stay on it. Linear positions (``means_transform``
    ``linear``, a lattice by construction) are included: refinement moves them along their
    lattice, and their curve keys sort and code on that range."""
    if cfg.frames in ("turned", "canonical"):
        gs = canonical_gaussians(gs, order_scales=cfg.frames == "canonical")
    values = coded_values(gs, cfg)
    out = {}
    if cfg.means_transform == "linear":
        out["means"] = channel_range(values["means"], cfg.means.bits)
    for name in ("sh0", "scales", "quats", "opacities"):
        t = quantised_channels(name, values[name], cfg)
        lo, hi = channel_range(t, getattr(cfg, name).bits)
        if not np.array_equal(hi, t.max(axis=0).astype(np.float32)):
            out[name] = (lo, hi)
    return out


def scene_drops(gs, cfg: GridCodecConfig) -> dict[str, np.ndarray]:
    """The low bits k [N] each Gaussian of ``gs`` drops per attribute under ``cfg.drop_fraction``:
    :func:`~.lowbits.gaussian_drops` of its render sensitivity (:func:`coded_sensitivity`)."""
    return gaussian_drops(coded_sensitivity(gs, cfg), coded_values(gs, cfg), cfg)


def coded_sensitivity(gs, cfg: GridCodecConfig) -> dict[str, np.ndarray]:
    """Each Gaussian's render sensitivity (:func:`~splatpack.compress.sensitivity.render_sensitivity`)
    per attribute, carried into the coded domain of :func:`~.values.coded_values` to first order:
    positions t = sign·log1p|x| (dx/dt = 1 + |x|), unit quaternions (× ‖q‖²), opacity as α
    (dα/do = α(1 − α)) where coded so. Frames do not change it: it is a mean over channels."""
    s = render_sensitivity(gs)
    if cfg.means_transform != "linear":
        x = np.abs(float64_numpy(gs.means))
        s["means"] = s["means"] * ((1.0 + x) ** 2).mean(1)
    s["quats"] = s["quats"] * (float64_numpy(gs.quats) ** 2).sum(1)
    if cfg.opacity_space == "alpha":
        a = 1.0 / (1.0 + np.exp(-float64_numpy(gs.opacities).reshape(-1)))
        s["opacities"] = s["opacities"] / np.maximum(a * (1.0 - a), 1e-12) ** 2
    return s


def grid_scene_parts(
    coded: dict[str, Coded],
    gi: np.ndarray,
    cells: GridCells,
    sh_degree: int,
    cfg: GridCodecConfig,
    sort_info,
    frames,
    drop_class=None,
) -> tuple[list, dict[str, Any]]:
    """(sections, meta) of a grid scene from its coded attributes (:func:`code_attribute` of each),
    the checked grid index, the frames the scales and rotations were coded in and the shared
    drop class c [N] (:func:`~.lowbits.shared_drop_class`, section ``grid.drop``) or None."""
    empty = np.flatnonzero(gi.reshape(-1) < 0).astype(np.uint32)
    sections = [Section("grid.empty", "deflate", encode_array(empty, "deflate"))]
    if drop_class is not None:
        layout = ImageLayout("ans", 1)
        sections.append(grid_section("grid.drop", drop_class[:, None].astype(np.uint16), cells, 1, 1, layout, 0))
    for name in ATTRIBUTES:
        if name in coded:
            sections += coded[name][0]
    meta = {
        "kind": FORMAT_KIND,
        "version": FORMAT_VERSION,
        "grid": {"height": cells.height, "width": cells.width},
        "sh_degree": sh_degree,
        # values were coded by coded_positions: an unresolved "auto" is the log
        "means_transform": "linear" if cfg.means_transform == "linear" else "signed-log1p",
        "opacity_space": cfg.opacity_space,
        "attributes": {name: entry for name, (_, entry) in coded.items()},
        "sort": sort_info,
        "frames": frames,  # informative (stored, turned or canonical): decoders use each pair as stored
    }
    return sections, meta


def grid_attribute_bytes(sections) -> dict[str, int]:
    """Payload bytes per attribute (``shN`` includes labels and centroids; ``empty`` the mask)."""
    out: dict[str, int] = {}
    for s in sections:
        key = s.name.split(".")[1]
        out[key] = out.get(key, 0) + len(s.payload)
    return out
