"""Post-processing and coding of a compact scene (Compact-3DGS §3.4, with entropy coding).

A trained compact model (masked Gaussians, R-VQ geometry, hash-grid colour field) is turned
into integer streams once (:func:`quantize_compact`), and those streams are what the ``.spk``
file stores losslessly (:func:`compact_sections` / :func:`read_compact`). Decoding is a fixed
function of the streams (:func:`dequantize`), so the model evaluated after training and the
model decoded from the file are the same arrays, bit for bit.

Streams (section names in the file):

* ``positions`` — each axis quantised to ``position_bits`` over the bounding box, the three
  integers interleaved into a Morton code, Gaussians sorted by it, and the code *differences*
  stored as little-endian bytes [N, ⌈3b/8⌉] coded by ANS with one model per byte plane (high
  planes are almost constant after sorting). Morton order also makes the Gaussians of one
  region neighbours in the file.
* ``opacities`` — α = σ(o) on ``opacity_bits`` (paper: 8), ANS.
* ``scales.indices`` / ``rotations.indices`` — R-VQ indices [N, S] (S = 6, K = 64), ANS with one
  model per stage; ``*.codebooks`` — the S×K codewords in float16. Scales are quantised in log
  space by default; rotations are sign-canonicalised (w ≥ 0) unit quaternions.
* ``colour.hash.LL`` — the hash-grid table, entries |v| < ``hash_prune`` (paper: 0.1) set to
  zero, the rest on a symmetric ``hash_bits`` grid (zero stays exactly zero, the most frequent
  symbol); one section per level ([T_l, F], ANS with one model per feature), because coarse
  levels are dense and fine ones almost all zero; ``colour.mlp`` — the MLP weights in float16.
* ``colour.sh`` — instead of the field, per-Gaussian SH in float16 (``colour_field: false``).

The paper's Huffman coding spends at least one bit per symbol; ANS with an adaptive (per-stream,
per-column) model codes the zero-dominated hash table at well under one bit per entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from splatpack.codecs.base import EncodedScene
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError

FORMAT_KIND = "compact-3dgs"


@dataclass
class CodecConfig:
    position_bits: int = 16  # per axis, 1..21 (a 63-bit Morton code)
    opacity_bits: int = 8
    hash_prune: float = 0.1  # |v| below → 0 (Compact-3DGS post-processing)
    hash_bits: int = 8
    min_opacity: float = 0.0  # Gaussians with α below are dropped at save time (0: keep all)


# ---- Morton codes ---------------------------------------------------------------------------------


def _spread3(v: np.ndarray) -> np.ndarray:
    """Insert two zero bits between the low 21 bits of v (uint64)."""
    v = v.astype(np.uint64) & np.uint64(0x1FFFFF)
    v = (v | (v << np.uint64(32))) & np.uint64(0x1F00000000FFFF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x1F0000FF0000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x100F00F00F00F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x10C30C30C30C30C3)
    v = (v | (v << np.uint64(2))) & np.uint64(0x1249249249249249)
    return v


def _compact3(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64) & np.uint64(0x1249249249249249)
    v = (v ^ (v >> np.uint64(2))) & np.uint64(0x10C30C30C30C30C3)
    v = (v ^ (v >> np.uint64(4))) & np.uint64(0x100F00F00F00F00F)
    v = (v ^ (v >> np.uint64(8))) & np.uint64(0x1F0000FF0000FF)
    v = (v ^ (v >> np.uint64(16))) & np.uint64(0x1F00000000FFFF)
    v = (v ^ (v >> np.uint64(32))) & np.uint64(0x1FFFFF)
    return v


def morton_encode(q: np.ndarray) -> np.ndarray:
    """[N, 3] integers < 2^21 → [N] uint64 Morton codes (x in the lowest bit)."""
    return _spread3(q[:, 0]) | (_spread3(q[:, 1]) << np.uint64(1)) | (_spread3(q[:, 2]) << np.uint64(2))


def morton_decode(code: np.ndarray) -> np.ndarray:
    """Inverse of :func:`morton_encode`: [N] uint64 → [N, 3] uint32."""
    code = code.astype(np.uint64)
    return np.stack([_compact3(code >> np.uint64(i)) for i in range(3)], axis=1).astype(np.uint32)


def delta_bytes(codes: np.ndarray, nbytes: int) -> np.ndarray:
    """Sorted uint64 codes → first-difference byte planes [N, nbytes] (little-endian)."""
    d = np.diff(codes, prepend=np.uint64(0)).astype("<u8")
    return d.view(np.uint8).reshape(-1, 8)[:, :nbytes].copy()


def undelta_bytes(planes: np.ndarray) -> np.ndarray:
    n, nb = planes.shape
    full = np.zeros((n, 8), np.uint8)
    full[:, :nb] = planes
    return np.cumsum(full.view("<u8").reshape(n), dtype=np.uint64)


# ---- the coded representation ----------------------------------------------------------------------


@dataclass
class CompactCode:
    """Everything a ``.spk`` compact scene stores: integer streams, small float tables, meta."""

    morton: np.ndarray  # [N] uint64, sorted
    opacity_q: np.ndarray  # [N] uint8/uint16
    scale_idx: np.ndarray  # [N, S] uint8
    rot_idx: np.ndarray  # [N, S] uint8
    scale_books: np.ndarray  # [S, K, 3] float16
    rot_books: np.ndarray  # [S, K, 4] float16
    hash_q: np.ndarray | None  # [P] int8/int16 (colour field) …
    mlp: list[np.ndarray] | None  # float16 weight, bias, weight, bias, …
    sh: np.ndarray | None  # … or per-Gaussian SH [N, K, 3] float16
    meta: dict[str, Any] = field(default_factory=dict)
    views: np.ndarray | None = None  # [M, 27] float32 cameras: viewmat (16), K (9), width, height

    @property
    def num_gaussians(self) -> int:
        return int(self.morton.shape[0])


@dataclass
class CompactScene:
    """A decoded compact scene, ready to render (see :func:`render_compact`)."""

    means: Tensor  # [N, 3]
    quats: Tensor  # [N, 4] (not normalised: the rasteriser normalises)
    scales: Tensor  # [N, 3] linear
    opacities: Tensor  # [N] α
    field: Any | None  # ColourField (eval) or None
    sh: Tensor | None  # [N, K, 3] when there is no field
    meta: dict[str, Any]
    views: np.ndarray | None = None  # see CompactCode.views

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        from splatpack.core.sh import sh_degree_from_bases

        return 0 if self.sh is None else sh_degree_from_bases(self.sh.shape[1])


def camera_center(viewmat: Tensor) -> Tensor:
    """World position of a camera from its world→camera matrix: c = −Rᵀt."""
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    return -R.T @ t


def field_colors(field, means: Tensor, viewmat: Tensor) -> Tensor:
    """SH-DC colours [N, 1, 3] from the colour field for a camera (Compact-3DGS eq. 6)."""
    dirs = field.view_dirs(means, camera_center(viewmat))
    return field(means, dirs)[:, None, :]


def render_compact(scene: CompactScene, viewmat, K, width, height, background=None, backend="auto"):
    """Render a :class:`CompactScene` with :func:`splatpack.render.rasterize`."""
    from splatpack.render import rasterize

    if scene.field is not None:
        colors, degree = field_colors(scene.field, scene.means, viewmat), 0
    else:
        colors, degree = scene.sh, scene.sh_degree
    return rasterize(
        scene.means, scene.quats, scene.scales, scene.opacities, colors, viewmat, K, width, height,
        sh_degree=degree, background=background, backend=backend,
    )  # fmt: skip


# ---- quantise (once, after training) ---------------------------------------------------------------


def quantize_positions(means: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(integer grid [N, 3] uint64, lo [3] f32, hi [3] f32) over the bounding box."""
    if not 1 <= bits <= 21:
        raise ValueError("position_bits must be in 1..21")
    lo = means.min(0).astype(np.float32)
    hi = means.max(0).astype(np.float32)
    span = np.maximum(hi - lo, np.float32(1e-12))
    levels = (1 << bits) - 1
    q = np.rint((means - lo) / span * levels).clip(0, levels).astype(np.uint64)
    return q, lo, hi


def quantize_compact(
    means: Tensor,
    opacities: Tensor,
    scale_idx: Tensor,
    rot_idx: Tensor,
    scale_books: Tensor,
    rot_books: Tensor,
    cfg: CodecConfig,
    field=None,
    sh: Tensor | None = None,
    meta: dict[str, Any] | None = None,
    views: np.ndarray | None = None,
) -> CompactCode:
    """Post-process a trained compact model into a :class:`CompactCode`.

    ``opacities`` are α ∈ [0, 1]; ``*_idx`` the R-VQ indices [N, S] of the final codebooks.
    Gaussians with α < ``cfg.min_opacity`` are dropped (they add bytes, not pixels).
    """
    if cfg.min_opacity > 0:
        keep = opacities.detach() >= cfg.min_opacity
        if not bool(keep.all()):
            means, opacities, scale_idx, rot_idx = means[keep], opacities[keep], scale_idx[keep], rot_idx[keep]
            sh = None if sh is None else sh[keep]
    if len(means) == 0:
        raise SplatpackError(f"no Gaussians to code (none has α ≥ min_opacity {cfg.min_opacity})")
    means_np = means.detach().cpu().double().numpy()
    q, lo, hi = quantize_positions(means_np, cfg.position_bits)
    codes = morton_encode(q)
    order = np.argsort(codes, kind="stable")
    levels = (1 << cfg.opacity_bits) - 1
    op_dtype = np.uint8 if cfg.opacity_bits <= 8 else np.uint16
    opacity_q = np.rint(opacities.detach().cpu().double().numpy().clip(0, 1) * levels).astype(op_dtype)
    meta = dict(meta or {})
    meta.update(
        kind=FORMAT_KIND,
        position={"bits": cfg.position_bits, "lo": lo.tolist(), "hi": hi.tolist()},
        opacity={"bits": cfg.opacity_bits},
        rvq={"stages": int(scale_idx.shape[1]), "codebook_size": int(scale_books.shape[1])},
    )
    hash_q = mlp = sh_np = None
    if field is not None:
        params, layers = field_arrays(field)
        v = params.astype(np.float64)
        v[np.abs(v) < cfg.hash_prune] = 0.0
        qmax = (1 << (cfg.hash_bits - 1)) - 1
        step = float(np.float32(max(np.abs(v).max(), 1e-12) / qmax))
        hash_q = np.rint(v / step).clip(-qmax, qmax).astype(np.int8 if cfg.hash_bits <= 8 else np.int16)
        mlp = [a.astype(np.float16) for a in layers]
        meta["colour"] = {
            "kind": "hash-grid-field",
            "step": step,
            "bits": cfg.hash_bits,
            "mlp_shapes": [list(a.shape) for a in layers],
            "config": field_config_dict(field),
            "aabb": field_aabb(field),
        }
    else:
        if sh is None:
            raise ValueError("either a colour field or per-Gaussian SH is needed")
        sh_np = sh.detach().cpu().numpy().astype(np.float16)[order]
        meta["colour"] = {"kind": "sh", "bases": int(sh_np.shape[1])}
    return CompactCode(
        morton=codes[order],
        opacity_q=opacity_q[order],
        scale_idx=scale_idx.cpu().numpy().astype(np.uint8)[order],
        rot_idx=rot_idx.cpu().numpy().astype(np.uint8)[order],
        scale_books=scale_books.detach().cpu().numpy().astype(np.float16),
        rot_books=rot_books.detach().cpu().numpy().astype(np.float16),
        hash_q=hash_q,
        mlp=mlp,
        sh=sh_np,
        meta=meta,
        views=None if views is None else np.asarray(views, np.float32).reshape(-1, 27),
    )


# ---- the colour field as arrays -------------------------------------------------------------------


def field_arrays(field) -> tuple[np.ndarray, list[np.ndarray]]:
    """(hash table params [P] float32, MLP weights and biases in order)."""
    state = field.state_for_export()
    params = state["hash_params"].detach().cpu().float().numpy().reshape(-1)
    layers = []
    for w, b in state["mlp"]:
        layers.append(w.detach().cpu().float().numpy())
        layers.append(b.detach().cpu().float().numpy())
    return params, layers


def field_config_dict(field) -> dict[str, Any]:
    return field.cfg.to_dict()


def field_aabb(field) -> list[list[float]]:
    return [field.aabb_min.cpu().tolist(), field.aabb_max.cpu().tolist()]


def build_field(colour_meta: dict[str, Any], hash_params: Tensor, mlp: list[Tensor]):
    """Rebuild a :class:`~splatpack.compress.colour_field.ColourField` from decoded arrays."""
    from splatpack.compress.colour_field import ColourField, ColourFieldConfig

    cfg = ColourFieldConfig.from_dict(colour_meta["config"])
    lo, hi = colour_meta["aabb"]
    pairs = [(mlp[i], mlp[i + 1]) for i in range(0, len(mlp), 2)]
    return ColourField.from_arrays(cfg, lo, hi, hash_params, pairs).eval()


# ---- dequantise (the decoder) --------------------------------------------------------------------


def dequantize(code: CompactCode) -> CompactScene:
    """The decoder: a fixed function of the stored streams (bit-identical wherever it runs on CPU)."""
    from splatpack.compress.rvq import ResidualVQ

    m = code.meta
    pos = m["position"]
    lo = np.asarray(pos["lo"], np.float32)
    hi = np.asarray(pos["hi"], np.float32)
    levels = np.float32((1 << int(pos["bits"])) - 1)
    step = np.maximum(hi - lo, np.float32(1e-12)) / levels
    grid = morton_decode(code.morton).astype(np.float32)
    means = torch.from_numpy((lo + grid * step).astype(np.float32))
    op_levels = np.float32((1 << int(m["opacity"]["bits"])) - 1)
    opac = torch.from_numpy(code.opacity_q.astype(np.float32) / op_levels)
    sbooks = torch.from_numpy(code.scale_books.astype(np.float32))
    rbooks = torch.from_numpy(code.rot_books.astype(np.float32))
    s = ResidualVQ.decode(torch.from_numpy(code.scale_idx.astype(np.int64)), sbooks)
    scales = torch.exp(s) if m.get("scale_space", "log") == "log" else s
    quats = ResidualVQ.decode(torch.from_numpy(code.rot_idx.astype(np.int64)), rbooks)
    colour = m["colour"]
    field = sh = None
    if colour["kind"] == "hash-grid-field":
        params = torch.from_numpy(code.hash_q.astype(np.float32) * np.float32(colour["step"]))
        mlp = [torch.from_numpy(a.astype(np.float32)) for a in code.mlp]
        field = build_field(colour, params, mlp)
    else:
        sh = torch.from_numpy(code.sh.astype(np.float32))
    return CompactScene(
        means=means, quats=quats, scales=scales, opacities=opac, field=field, sh=sh, meta=m, views=code.views
    )


# ---- the file ---------------------------------------------------------------------------------------


def compact_sections(code: CompactCode) -> list:
    """The ``.spk`` sections of a :class:`CompactCode` (see the module docstring)."""
    from splatpack.spk.arrays import encode_array
    from splatpack.spk.container import Section

    nbytes = (3 * int(code.meta["position"]["bits"]) + 7) // 8
    out = [
        Section("positions", "ans", encode_array(delta_bytes(code.morton, nbytes), "ans")),
        Section("opacities", "ans", encode_array(code.opacity_q, "ans")),
        Section("scales.indices", "ans", encode_array(code.scale_idx, "ans")),
        Section("scales.codebooks", "raw", encode_array(code.scale_books, "raw")),
        Section("rotations.indices", "ans", encode_array(code.rot_idx, "ans")),
        Section("rotations.codebooks", "raw", encode_array(code.rot_books, "raw")),
    ]
    if code.hash_q is not None:
        f = _features(code.meta["colour"])
        for lvl, (a, b) in enumerate(hash_level_slices(code.meta["colour"])):
            out.append(Section(f"colour.hash.{lvl:02d}", "ans", encode_array(code.hash_q[a:b].reshape(-1, f), "ans")))
        flat = np.concatenate([a.reshape(-1) for a in code.mlp]).astype(np.float16)
        out.append(Section("colour.mlp", "raw", encode_array(flat, "raw")))
    else:
        out.append(Section("colour.sh", "raw", encode_array(code.sh, "raw")))
    if code.views is not None:
        out.append(Section("views", "raw", encode_array(code.views, "raw"), required=False))
    return out


def _features(colour_meta: dict[str, Any]) -> int:
    return int(colour_meta["config"]["grid"]["n_features_per_level"])


def hash_level_slices(colour_meta: dict[str, Any]) -> list[tuple[int, int]]:
    """[start, end) of each level in the flat table (tiny-cuda-nn layout), from the header."""
    from splatpack.compress.hash_grid import HashGridConfig, grid_levels

    grid = HashGridConfig(**colour_meta["config"]["grid"])
    f = grid.n_features_per_level
    return [(lv.offset * f, (lv.offset + lv.size) * f) for lv in grid_levels(grid)]


# attribute → section-name prefixes, for the per-attribute storage table (the paper's Table 6)
ATTRIBUTES = {  # section-name prefixes per attribute: compact scenes, then grid scenes
    "position": ("positions", "grid.means"),
    "opacity": ("opacities", "grid.opacities"),
    "scale": ("scales.", "grid.scales"),
    "rotation": ("rotations.", "grid.quats"),
    "colour": ("colour.", "grid.sh0", "grid.shN"),
}


def attribute_bytes(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Bytes per attribute (and ``other``: header, table, padding, optional sections)."""
    table = {a: sum(v for k, v in sizes.items() if k.startswith(prefixes)) for a, prefixes in ATTRIBUTES.items()}
    table["other"] = total - sum(table.values())
    table["total"] = total
    return table


def pack_views(views) -> np.ndarray:
    """Cameras as [M, 27] float32 rows: viewmat (16), K (9), width, height."""
    rows = [np.concatenate([np.asarray(vm, np.float32).reshape(16), np.asarray(K, np.float32).reshape(9), [w, h]])
            for vm, K, w, h in views]  # fmt: skip
    return np.asarray(rows, np.float32).reshape(-1, 27)


def unpack_views(views: np.ndarray) -> list[tuple[Tensor, Tensor, int, int]]:
    return [
        (torch.from_numpy(r[:16].reshape(4, 4).copy()), torch.from_numpy(r[16:25].reshape(3, 3).copy()), int(r[25]), int(r[26]))
        for r in views
    ]


def write_compact(path: str | Path, code: CompactCode) -> int:
    """Write ``path`` (atomically); returns its size in bytes."""
    return COMPACT_SCENE_CODEC.encode(code).write(path)


def read_compact(path: str | Path) -> CompactCode:
    """Read a compact ``.spk`` back into its streams (:func:`decode_compact`)."""
    from splatpack.spk.arrays import CODECS
    from splatpack.spk.container import SpkReader

    with SpkReader(path, known_codecs=set(CODECS)) as r:
        return decode_compact(r)


def decode_compact(r) -> CompactCode:
    """Read a compact ``.spk`` back into its streams; every problem is one clear error."""
    from splatpack.spk.container import SpkError

    path = r.path

    m = r.meta
    n = r.num_gaussians
    if m.get("kind") != FORMAT_KIND:
        raise SpkError(f"not a compact scene (kind {m.get('kind')!r})", path)

    def arr(name: str, shape_check=None, per_gaussian: bool = True) -> np.ndarray:
        if not r.has(name):
            raise SpkError(f"section '{name}' is missing", path)
        a = r.read_array(name, max_elements=max(n, 1) * 64 if per_gaussian else None)
        if shape_check is not None and not shape_check(a):
            raise SpkError(f"section '{name}' has shape {a.shape}, which does not fit {n} Gaussians", path)
        return a

    try:
        bits = int(m["position"]["bits"])
        if not 1 <= bits <= 21:
            raise ValueError("position bits")
        nb = (3 * bits + 7) // 8
        planes = arr("positions", lambda a: a.ndim == 2 and a.shape == (n, nb) and a.dtype == np.uint8)
        opac = arr("opacities", lambda a: a.ndim == 1 and a.shape[0] == n)
        sidx = arr("scales.indices", lambda a: a.ndim == 2 and a.shape[0] == n)
        ridx = arr("rotations.indices", lambda a: a.ndim == 2 and a.shape[0] == n)
        sb = arr("scales.codebooks", lambda a: a.ndim == 3 and a.shape[2] == 3 and a.shape[0] == sidx.shape[1], False)
        rb = arr("rotations.codebooks", lambda a: a.ndim == 3 and a.shape[2] == 4 and a.shape[0] == ridx.shape[1], False)
        if sidx.size and int(sidx.max()) >= sb.shape[1] or ridx.size and int(ridx.max()) >= rb.shape[1]:
            raise SpkError("an R-VQ index is out of its codebook", path)
        colour = m["colour"]
        hash_q = mlp = sh = None
        if colour["kind"] == "hash-grid-field":
            f = _features(colour)
            parts = []
            for lvl, (a0, b0) in enumerate(hash_level_slices(colour)):
                parts.append(arr(f"colour.hash.{lvl:02d}", lambda a: a.shape == ((b0 - a0) // f, f), False))
            hash_q = np.concatenate([p.reshape(-1) for p in parts])
            flat = arr("colour.mlp", lambda a: a.ndim == 1 and a.dtype == np.float16, False)
            shapes = [tuple(int(d) for d in s) for s in colour["mlp_shapes"]]
            sizes = [int(np.prod(s)) for s in shapes]
            if sum(sizes) != flat.size:
                raise SpkError("section 'colour.mlp' does not match the MLP shapes in the header", path)
            mlp, o = [], 0
            for s, k in zip(shapes, sizes):
                mlp.append(flat[o : o + k].reshape(s))
                o += k
        elif colour["kind"] == "sh":
            sh = arr("colour.sh", lambda a: a.ndim == 3 and a.shape[0] == n and a.shape[2] == 3)
        else:
            raise SpkError(f"unknown colour kind {colour['kind']!r}", path)
        views = None
        if r.has("views"):
            views = arr("views", lambda a: a.ndim == 2 and a.shape[1] == 27 and a.dtype == np.float32, False)
    except (KeyError, TypeError, ValueError) as e:
        raise SpkError(f"malformed compact-scene header ({type(e).__name__}: {e})", path) from None
    return CompactCode(
        morton=undelta_bytes(planes), opacity_q=opac, scale_idx=sidx, rot_idx=ridx, scale_books=sb, rot_books=rb,
        hash_q=hash_q, mlp=mlp, sh=sh, meta=m, views=views,
    )  # fmt: skip


def storage_table(path: str | Path) -> dict[str, int]:
    """Bytes per attribute (position, opacity, scale, rotation, colour, other) of a compact file."""
    from splatpack.spk.container import SpkReader

    with SpkReader(path) as r:
        sizes = {s.name: s.length for s in r.sections}
        total = r.file_size
    return attribute_bytes(sizes, total)


def compact_to_gaussians(scene) -> GaussianSet:
    """A decoded compact scene as a plain :class:`GaussianSet`: the colour field baked into
    degree-3 SH over the stored training-camera directions (:func:`~splatpack.compress.bake.bake_sh`)."""
    from splatpack.compress.bake import bake_sh

    views = unpack_views(scene.views) if scene.views is not None else []
    if scene.field is not None:
        centres = torch.stack([camera_center(vm) for vm, _, _, _ in views]) if views else None
        sh = bake_sh(scene.field, scene.means, centres)
    else:
        sh = scene.sh
    alpha = scene.opacities.clamp(1e-6, 1 - 1e-6)
    return GaussianSet(
        means=scene.means,
        quats=torch.nn.functional.normalize(scene.quats, dim=-1),
        scales=torch.log(scene.scales.abs().clamp_min(1e-12)),
        opacities=torch.log(alpha / (1 - alpha)),
        sh0=sh[:, :1].contiguous(),
        shN=sh[:, 1:].contiguous(),
    )


class CompactSceneCodec:
    """Compact-3DGS scenes as a :class:`~splatpack.codecs.base.SceneCodec` (``kind: compact-3dgs``)."""

    kind = FORMAT_KIND

    def encode(self, code: CompactCode, config=None) -> EncodedScene:
        """The sections of post-processed streams (:func:`quantize_compact` makes them)."""
        return EncodedScene(compact_sections(code), code.meta, code.num_gaussians)

    def decode(self, reader) -> CompactScene:
        return dequantize(decode_compact(reader))

    def gaussians(self, decoded: CompactScene):
        return compact_to_gaussians(decoded)


COMPACT_SCENE_CODEC = CompactSceneCodec()
