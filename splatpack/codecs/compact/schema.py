"""The header (meta) of a compact ``.spk`` scene as an explicit schema, checked whole before anything
is built from it.

:func:`compact_layout` checks every key :func:`~splatpack.codecs.compact.quantize_compact` writes
(types, ranges, the colour field's sizes against each other) and returns the codec, shape and dtype
each section must have; :func:`section_shapes` checks the file's sections against that layout
(presence, codec, and the byte size of every ``raw`` section) without reading a payload. A decoder
then reads each section with its expected shape and dtype, which the array header must match before
anything is decoded. Every violation is one :class:`~splatpack.spk.SpkError` naming the key or section.

Limits: the ranges are those the encoder and the colour field can write; the hash table is bounded
by :data:`MAX_TABLE_PARAMS` (a table's sections may hold many zeros in a few bytes, so their byte
size alone does not bound it), the MLP by the exact byte size of its ``float16`` section.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from splatpack.codecs.compact.config import FORMAT_KIND
from splatpack.codecs.compact.field import hash_level_slices, implied_mlp_shapes
from splatpack.codecs.compact.positions import position_bytes
from splatpack.spk.container import SpkError, SpkReader

__all__ = ["MAX_TABLE_PARAMS", "SectionSpec", "compact_layout", "section_shapes"]

#: the most hash-table values (entries × features, all levels) a compact scene may declare
MAX_TABLE_PARAMS = 1 << 26
MAX_HIDDEN = 4096
MAX_HIDDEN_LAYERS = 64
MAX_RVQ_STAGES = 64
BACKENDS = ("auto", "numba", "torch", "tcnn")
SCALE_SPACES = ("log", "linear")
COLOUR_KINDS = ("hash-grid-field", "sh")
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class SectionSpec:
    """What one section must be: its codec, shape (``None``: a free leading dimension) and dtype."""

    codec: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    required: bool = True


# --------------------------------------------------------------------------- value checks


class _Meta:
    """Typed access to the header; every failure is one :class:`SpkError` naming the key."""

    def __init__(self, path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> SpkError:
        return SpkError(f"compact-scene header: '{key}' {problem}", self.path)

    def obj(self, v: Any, key: str, required: tuple[str, ...], closed: bool = True) -> dict[str, Any]:
        """``v`` as a JSON object with every ``required`` key (and, when ``closed``, no other key)."""
        if not isinstance(v, dict):
            raise self.fail(key, f"must be an object, not {_show(v)}")
        for k in required:
            if k not in v:
                raise self.fail(_join(key, k), "is missing")
        for k in v:
            if closed and k not in required:
                raise self.fail(_join(key, k), f"is not a key of '{key}'")
        return v

    def int(self, v: Any, key: str, lo: int, hi: int) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise self.fail(key, f"must be an integer in {lo}..{hi}, not {_show(v)}")
        return v

    def num(self, v: Any, key: str, lo: float = -_F32_MAX, hi: float = _F32_MAX) -> float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi  # NaN fails, 10**400 too
        if not ok:
            raise self.fail(key, f"must be a finite number in [{lo:g}, {hi:g}], not {_show(v)}")
        return float(v)

    def vec3(self, v: Any, key: str) -> list[float]:
        if not isinstance(v, list) or len(v) != 3:
            raise self.fail(key, f"must be a list of 3 numbers, not {_show(v)}")
        return [self.num(x, f"{key}[{i}]") for i, x in enumerate(v)]

    def choice(self, v: Any, key: str, options: tuple[str, ...]) -> str:
        if not isinstance(v, str) or v not in options:
            raise self.fail(key, f"must be one of {', '.join(map(repr, options))}, not {_show(v)}")
        return v


def _join(key: str, k: str) -> str:
    return k if key == "meta" else f"{key}.{k}"


def _show(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, (dict, list, str, int, float, bool, type(None))) else repr(v)
    return s if len(s) <= 48 else s[:45] + "..."


# --------------------------------------------------------------------------- the schema


def compact_layout(meta: Any, num_gaussians: int, path=None) -> dict[str, SectionSpec]:
    """Check the whole compact-scene header and return the section each key implies, by name.

    Keys the encoder writes are checked exactly (an unknown key inside them is refused); at the top
    level the optional ``scale_space``, ``background``, ``scene`` and ``steps`` are checked when
    present, and any other key is kept for the caller."""
    c = _Meta(path)
    m = c.obj(meta, "meta", ("kind", "position", "opacity", "rvq", "colour"), closed=False)
    if m["kind"] != FORMAT_KIND:
        raise c.fail("kind", f"must be {FORMAT_KIND!r}, not {_show(m['kind'])}")
    n = num_gaussians
    pos = c.obj(m["position"], "position", ("bits", "lo", "hi"))
    bits = c.int(pos["bits"], "position.bits", 1, 21)
    lo, hi = c.vec3(pos["lo"], "position.lo"), c.vec3(pos["hi"], "position.hi")
    if any(b < a for a, b in zip(lo, hi)):
        raise c.fail("position.hi", f"is below 'position.lo' on an axis ({_show(hi)} < {_show(lo)})")
    op_bits = c.int(c.obj(m["opacity"], "opacity", ("bits",))["bits"], "opacity.bits", 1, 16)
    rvq = c.obj(m["rvq"], "rvq", ("stages", "codebook_size"))
    stages = c.int(rvq["stages"], "rvq.stages", 1, MAX_RVQ_STAGES)
    book = c.int(rvq["codebook_size"], "rvq.codebook_size", 1, 256)  # uint8 indices
    if "scale_space" in m:
        c.choice(m["scale_space"], "scale_space", SCALE_SPACES)
    if "background" in m:
        c.vec3(m["background"], "background")
    if "scene" in m and not isinstance(m["scene"], str):
        raise c.fail("scene", f"must be a string, not {_show(m['scene'])}")
    if "steps" in m:
        c.int(m["steps"], "steps", 0, 1 << 62)
    f16, u8 = np.dtype("<f2"), np.dtype("<u1")
    out = {
        "positions": SectionSpec("ans", (n, position_bytes(bits)), u8),
        "opacities": SectionSpec("ans", (n,), u8 if op_bits <= 8 else np.dtype("<u2")),
        "scales.indices": SectionSpec("ans", (n, stages), u8),
        "scales.codebooks": SectionSpec("raw", (stages, book, 3), f16),
        "rotations.indices": SectionSpec("ans", (n, stages), u8),
        "rotations.codebooks": SectionSpec("raw", (stages, book, 4), f16),
        "views": SectionSpec("raw", (None, 27), np.dtype("<f4"), required=False),
    }
    colour = m["colour"]
    kind = c.choice(c.obj(colour, "colour", ("kind",), closed=False)["kind"], "colour.kind", COLOUR_KINDS)
    if kind == "sh":
        sh = c.obj(colour, "colour", ("kind", "bases"))
        bases = c.int(sh["bases"], "colour.bases", 1, 16)
        if bases not in (1, 4, 9, 16):
            raise c.fail("colour.bases", f"must be 1, 4, 9 or 16 (SH degree 0..3), not {bases}")
        out["colour.sh"] = SectionSpec("raw", (n, bases, 3), f16)
    else:
        out.update(_field_layout(c, colour))
    return out


def _field_layout(c: _Meta, colour: dict[str, Any]) -> dict[str, SectionSpec]:
    """The sections of a hash-grid colour field: one per table level and the MLP's ``float16`` values."""
    col = c.obj(colour, "colour", ("kind", "step", "bits", "mlp_shapes", "config", "aabb"))
    c.num(col["step"], "colour.step", lo=float(np.finfo(np.float32).tiny))
    hash_bits = c.int(col["bits"], "colour.bits", 2, 16)
    box = col["aabb"]
    if not isinstance(box, list) or len(box) != 2:
        raise c.fail("colour.aabb", f"must be [[x, y, z] min, [x, y, z] max], not {_show(box)}")
    lo, hi = c.vec3(box[0], "colour.aabb[0]"), c.vec3(box[1], "colour.aabb[1]")
    if not all(np.float32(b) > np.float32(a) for a, b in zip(lo, hi)):
        raise c.fail("colour.aabb", f"max must exceed min on every axis, not {_show(box)}")
    cfg = c.obj(col["config"], "colour.config", ("grid", "hidden", "hidden_layers", "dir_sh_degree", "backend"))
    c.int(cfg["hidden"], "colour.config.hidden", 1, MAX_HIDDEN)
    c.int(cfg["hidden_layers"], "colour.config.hidden_layers", 0, MAX_HIDDEN_LAYERS)
    c.int(cfg["dir_sh_degree"], "colour.config.dir_sh_degree", 0, 3)
    c.choice(cfg["backend"], "colour.config.backend", BACKENDS)
    keys = ("n_levels", "n_features_per_level", "log2_hashmap_size", "base_resolution", "per_level_scale")
    grid = c.obj(cfg["grid"], "colour.config.grid", keys)
    c.int(grid["n_levels"], "colour.config.grid.n_levels", 1, 32)
    feats = c.int(grid["n_features_per_level"], "colour.config.grid.n_features_per_level", 1, 8)
    if feats not in (1, 2, 4, 8):
        raise c.fail("colour.config.grid.n_features_per_level", f"must be 1, 2, 4 or 8, not {feats}")
    c.int(grid["log2_hashmap_size"], "colour.config.grid.log2_hashmap_size", 1, 24)
    c.int(grid["base_resolution"], "colour.config.grid.base_resolution", 1, 1 << 16)
    c.num(grid["per_level_scale"], "colour.config.grid.per_level_scale", 1.0, 8.0)
    slices = hash_level_slices(col)
    if slices[-1][1] > MAX_TABLE_PARAMS:
        raise c.fail("colour.config.grid", f"implies a hash table of {slices[-1][1]} values, over {MAX_TABLE_PARAMS}")
    want = [list(s) for s in implied_mlp_shapes(cfg)]
    if not _same_shapes(col["mlp_shapes"], want):
        raise c.fail("colour.mlp_shapes", f"must be the MLP shapes its config implies, {_show(want)}")
    table = np.dtype("<i1") if hash_bits <= 8 else np.dtype("<i2")
    out = {
        f"colour.hash.{lvl:02d}": SectionSpec("ans", ((b - a) // feats, feats), table)
        for lvl, (a, b) in enumerate(slices)
    }
    out["colour.mlp"] = SectionSpec("raw", (sum(math.prod(s) for s in want),), np.dtype("<f2"))
    return out


def _same_shapes(shapes: Any, want: list[list[int]]) -> bool:
    """Whether ``shapes`` is exactly ``want``: lists of integers (no bool or float standing in)."""
    if not isinstance(shapes, list) or len(shapes) != len(want):
        return False
    for s, w in zip(shapes, want):
        if not isinstance(s, list) or len(s) != len(w):
            return False
        if any(type(d) is not int or d != e for d, e in zip(s, w)):
            return False
    return True


# --------------------------------------------------------------------------- the sections


def section_shapes(layout: dict[str, SectionSpec], r: SpkReader) -> dict[str, tuple[int, ...]]:
    """Each present section's exact shape, after checking it against ``layout`` from the section
    table alone: present when required, the codec the encoder writes, and a ``raw`` section's byte
    size equal to what its shape needs (resolving a free leading dimension from it)."""
    out: dict[str, tuple[int, ...]] = {}
    for name, spec in layout.items():
        if not r.has(name):
            if spec.required:
                raise SpkError(f"section '{name}' is missing", r.path)
            continue
        info = r.info(name)
        if info.codec != spec.codec:
            raise SpkError(
                f"section '{name}' uses codec '{info.codec}', a compact scene stores it as '{spec.codec}'", r.path
            )
        shape = spec.shape
        if spec.codec == "raw":
            data = info.length - 8 - 8 * len(shape)
            row = math.prod(d for d in shape if d is not None) * spec.dtype.itemsize
            if None in shape:
                shape = tuple(max(data, 0) // row if d is None else d for d in shape)
            if data != math.prod(shape) * spec.dtype.itemsize:
                want = 8 + 8 * len(shape) + math.prod(shape) * spec.dtype.itemsize
                what = f"{want} bytes" if None not in spec.shape else f"a whole number of {row}-byte rows"
                raise SpkError(
                    f"section '{name}' holds {info.length} bytes, the header implies {what} "
                    f"(shape {_shape(spec.shape)} of {spec.dtype.newbyteorder('=')})",
                    r.path,
                )
        out[name] = shape  # type: ignore[assignment]
    return out


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("M" if d is None else str(d) for d in shape) + ")"
