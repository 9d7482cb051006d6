"""The coded representation of a compact scene (Compact-3DGS §3.4 post-processing, then entropy
coding) and its ``.spk`` sections.

A trained compact model is turned into integer streams once (:func:`quantize_compact`); those
streams are what the file stores losslessly (:func:`compact_sections`), so the model evaluated
after training and the model decoded from the file are the same arrays, bit for bit. The sections
are listed in :mod:`splatpack.codecs.compact`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from splatpack.codecs.compact.config import FORMAT_KIND, CompactCodecConfig
from splatpack.codecs.compact.field import hash_features, hash_level_slices, quantize_field
from splatpack.codecs.compact.positions import delta_bytes, morton_encode, position_bytes, quantize_positions
from splatpack.core.errors import SplatpackError
from splatpack.spk.arrays import encode_array
from splatpack.spk.container import Section

__all__ = ["CompactCode", "compact_sections", "quantize_compact"]


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


def quantize_compact(
    means: Tensor,
    opacities: Tensor,
    scale_idx: Tensor,
    rot_idx: Tensor,
    scale_books: Tensor,
    rot_books: Tensor,
    cfg: CompactCodecConfig,
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
        hash_q, mlp, meta["colour"] = quantize_field(field, cfg)
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


def compact_sections(code: CompactCode) -> list[Section]:
    """The ``.spk`` sections of a :class:`CompactCode` (listed in :mod:`splatpack.codecs.compact`)."""
    nbytes = position_bytes(int(code.meta["position"]["bits"]))
    out = [
        Section("positions", "ans", encode_array(delta_bytes(code.morton, nbytes), "ans")),
        Section("opacities", "ans", encode_array(code.opacity_q, "ans")),
        Section("scales.indices", "ans", encode_array(code.scale_idx, "ans")),
        Section("scales.codebooks", "raw", encode_array(code.scale_books, "raw")),
        Section("rotations.indices", "ans", encode_array(code.rot_idx, "ans")),
        Section("rotations.codebooks", "raw", encode_array(code.rot_books, "raw")),
    ]
    if code.hash_q is not None:
        f = hash_features(code.meta["colour"])
        for lvl, (a, b) in enumerate(hash_level_slices(code.meta["colour"])):
            out.append(Section(f"colour.hash.{lvl:02d}", "ans", encode_array(code.hash_q[a:b].reshape(-1, f), "ans")))
        flat = np.concatenate([a.reshape(-1) for a in code.mlp]).astype(np.float16)
        out.append(Section("colour.mlp", "raw", encode_array(flat, "raw")))
    else:
        out.append(Section("colour.sh", "raw", encode_array(code.sh, "raw")))
    if code.views is not None:
        out.append(Section("views", "raw", encode_array(code.views, "raw"), required=False))
    return out
