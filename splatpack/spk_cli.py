"""``splatpack info`` and ``splatpack decompress``: inspect a ``.spk`` file, or turn a compact
scene into a standard INRIA PLY that any 3DGS viewer opens (colour field baked into SH)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatpack.errors import SplatpackError
from splatpack.io import ply_size, save_ply
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


def format_info(d: dict[str, Any]) -> str:
    lines = [
        f"{d['file']}: {d['kind']}, format {d['version']}, {d['num_gaussians']:,} Gaussians, "
        f"{d['total_bytes']:,} bytes ({d['bytes_per_gaussian']:.2f} B/Gaussian)",
        f"  equivalent PLY (SH 3): {d['ply_equivalent_bytes']:,} bytes → {d['ratio']:.1f}× smaller",
        f"  {'section':<22}{'codec':<8}{'bytes':>12}{'share':>8}",
    ]
    for s in d["sections"]:
        lines.append(f"  {s['name']:<22}{s['codec']:<8}{s['bytes']:>12,}{100 * s['bytes'] / max(d['total_bytes'], 1):>7.1f}%")
    lines.append("  by attribute: " + ", ".join(f"{k} {v:,}" for k, v in d["attributes"].items()))
    return "\n".join(lines)


def decompress(path: str | Path, out: str | Path, max_views: int = 8) -> dict[str, Any]:
    """Write ``out`` (INRIA PLY, SH degree 3). Returns the baked-vs-field PSNR when measurable."""
    from splatpack.compress.bake import bake_sh
    from splatpack.compress.compact_codec import camera_center, dequantize, read_compact, render_compact, unpack_views
    from splatpack.metrics import psnr
    from splatpack.render import rasterize

    path = Path(path)
    if not path.is_file():
        raise SplatpackError("file does not exist", path)
    scene = dequantize(read_compact(path))
    views = unpack_views(scene.views) if scene.views is not None else []
    if scene.field is not None:
        centres = torch.stack([camera_center(vm) for vm, _, _, _ in views]) if views else None
        sh = bake_sh(scene.field, scene.means, centres)
    else:
        sh = scene.sh
    alpha = scene.opacities.clamp(1e-6, 1 - 1e-6)
    gs = GaussianSet(
        means=scene.means,
        quats=torch.nn.functional.normalize(scene.quats, dim=-1),
        scales=torch.log(scene.scales.abs().clamp_min(1e-12)),
        opacities=torch.log(alpha / (1 - alpha)),
        sh0=sh[:, :1].contiguous(),
        shN=sh[:, 1:].contiguous(),
    )
    save_ply(gs, out)
    result: dict[str, Any] = {"ply": str(out), "num_gaussians": len(gs), "bytes": Path(out).stat().st_size}
    if scene.field is not None and views:
        bg = torch.tensor(scene.meta.get("background", [0.0, 0.0, 0.0]), dtype=torch.float32)
        ps = []
        step = max(1, len(views) // max_views)
        for vm, K, w, h in views[::step][:max_views]:
            ref = render_compact(scene, vm, K, w, h, bg, "cpu")[0].clamp(0, 1)
            baked = rasterize(gs.means, gs.quats, gs.linear_scales, gs.alphas, gs.sh, vm, K, w, h,
                              sh_degree=3, background=bg, backend="cpu")[0].clamp(0, 1)  # fmt: skip
            ps.append(psnr(baked, ref))
        result["baked_vs_field_psnr"] = float(np.mean(ps))
        result["views"] = len(ps)
    return result
