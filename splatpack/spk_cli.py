"""``splatpack info``, ``decompress`` and ``export``: inspect a ``.spk`` file, or turn any scene
splatpack reads into a file other tools open (INRIA PLY, .splat, SPZ, PlayCanvas SOG; a compact
scene's colour field is baked into degree-3 SH)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatpack.errors import SplatpackError
from splatpack.io import ply_size
from splatpack.model import GaussianSet


def spk_info(path: str | Path) -> dict[str, Any]:
    """Sections, sizes and the ratio to the equivalent PLY (SH degree 3, 248 B per Gaussian)."""
    from splatpack.compress.compact_codec import attribute_bytes
    from splatpack.container.spk import read_spk_info

    path = Path(path)
    if not path.is_file():
        raise SplatpackError("file does not exist", path)
    info = read_spk_info(path)
    n = int(info["num_gaussians"])
    total = int(info["total_bytes"])
    sections = [{"name": s["name"], "codec": s["codec"], "bytes": int(s["bytes"])} for s in info["sections"]]
    attrs = attribute_bytes({s["name"]: s["bytes"] for s in sections}, total)
    ply = ply_size(n, 3)
    return {
        "file": str(path),
        "version": info["version"],
        "num_gaussians": n,
        "total_bytes": total,
        "ply_equivalent_bytes": ply,
        "ratio": ply / max(total, 1),
        "bytes_per_gaussian": total / max(n, 1),
        "sections": sections,
        "attributes": attrs,
        "kind": info["meta"].get("kind"),
    }


def relative_size(size: int, reference: int) -> str:
    """"3.1× smaller" or, for a file that grew (a tiny scene's headers), "1.4× larger"."""
    if size <= reference:
        return f"{reference / max(size, 1):.1f}× smaller"
    return f"{size / max(reference, 1):.1f}× larger"


def format_info(d: dict[str, Any]) -> str:
    lines = [
        f"{d['file']}: {d['kind']}, format {d['version']}, {d['num_gaussians']:,} Gaussians, "
        f"{d['total_bytes']:,} bytes ({d['bytes_per_gaussian']:.2f} B/Gaussian)",
        f"  equivalent PLY (SH 3): {d['ply_equivalent_bytes']:,} bytes → {relative_size(d['total_bytes'], d['ply_equivalent_bytes'])}",
        f"  {'section':<22}{'codec':<8}{'bytes':>12}{'share':>8}",
    ]
    for s in d["sections"]:
        lines.append(f"  {s['name']:<22}{s['codec']:<8}{s['bytes']:>12,}{100 * s['bytes'] / max(d['total_bytes'], 1):>7.1f}%")
    lines.append("  by attribute: " + ", ".join(f"{k} {v:,}" for k, v in d["attributes"].items()))
    return "\n".join(lines)


def is_spk(path: str | Path) -> bool:
    from splatpack.container.spk import MAGIC

    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def compact_to_gaussians(scene) -> GaussianSet:
    """A decoded compact scene as a plain :class:`GaussianSet`: the colour field baked into
    degree-3 SH over the stored training-camera directions (:func:`~splatpack.compress.bake.bake_sh`)."""
    from splatpack.compress.bake import bake_sh
    from splatpack.compress.compact_codec import camera_center, unpack_views

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


def spk_kind(path: str | Path) -> str | None:
    from splatpack.container.spk import read_spk_info

    return read_spk_info(path)["meta"].get("kind")


def load_gaussians(path: str | Path) -> GaussianSet:
    """Any scene splatpack reads, as Gaussians: a ``.spk`` (compact or grid scene) or a splat
    file (:func:`splatpack.io.load_splats`: PLY, compressed PLY, .splat, SPZ, SOG)."""
    from splatpack.io import load_splats

    if not is_spk(path):
        return load_splats(path)
    kind = spk_kind(path)
    if kind == "compact-3dgs":
        from splatpack.compress.compact_codec import dequantize, read_compact

        return compact_to_gaussians(dequantize(read_compact(path)))
    if kind == "sog-grid":
        from splatpack.compress.grid_codec import read_grid_scene

        return read_grid_scene(path)
    raise SplatpackError(f"unknown .spk scene kind {kind!r}", path)


def export(path: str | Path, out: str | Path, format: str | None = None, max_views: int = 8) -> dict[str, Any]:
    """Write the scene at ``path`` to ``out`` as ``format`` (ply|splat|spz|sog; from the
    extension when None). For a compact scene, also the PSNR between renders of the baked SH and
    of the colour field from its stored training cameras."""
    from splatpack.io import save_splats

    path = Path(path)
    if not path.exists():
        raise SplatpackError("file does not exist", path)
    scene = None
    if is_spk(path) and spk_kind(path) == "compact-3dgs":
        from splatpack.compress.compact_codec import dequantize, read_compact

        scene = dequantize(read_compact(path))
        gs = compact_to_gaussians(scene)
    else:
        gs = load_gaussians(path)
    save_splats(gs, out, format)
    from splatpack.io.formats import path_size

    result: dict[str, Any] = {"out": str(out), "num_gaussians": len(gs), "bytes": path_size(out)}
    if scene is not None and scene.field is not None and scene.views is not None:
        result.update(baked_vs_field(scene, gs, max_views))
    return result


def baked_vs_field(scene, gs: GaussianSet, max_views: int = 8) -> dict[str, Any]:
    """PSNR of the baked-SH render against the colour-field render over stored cameras."""
    from splatpack.compress.compact_codec import render_compact, unpack_views
    from splatpack.metrics import psnr
    from splatpack.render import rasterize

    views = unpack_views(scene.views)
    bg = torch.tensor(scene.meta.get("background", [0.0, 0.0, 0.0]), dtype=torch.float32)
    ps = []
    step = max(1, len(views) // max_views)
    for vm, K, w, h in views[::step][:max_views]:
        ref = render_compact(scene, vm, K, w, h, bg, "cpu")[0].clamp(0, 1)
        baked = rasterize(gs.means, gs.quats, gs.linear_scales, gs.alphas, gs.sh, vm, K, w, h,
                          sh_degree=3, background=bg, backend="cpu")[0].clamp(0, 1)  # fmt: skip
        ps.append(psnr(baked, ref))
    return {"baked_vs_field_psnr": float(np.mean(ps)), "views": len(ps)}


def decompress(path: str | Path, out: str | Path, max_views: int = 8) -> dict[str, Any]:
    """Write ``out`` (INRIA PLY, SH degree 3). Returns the baked-vs-field PSNR when measurable."""
    r = export(path, out, "ply", max_views)
    r["ply"] = r.pop("out")
    return r
