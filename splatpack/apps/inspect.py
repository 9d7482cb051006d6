"""``splatpack info``, ``decompress`` and ``export``: inspect a scene file (a ``.spk`` section by
section), or turn any scene splatpack reads into a file other tools open (INRIA PLY, .splat, SPZ, PlayCanvas SOG; a compact
scene's colour field is baked into degree-3 SH)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatpack.codecs import read_scene
from splatpack.codecs.compact import CompactScene, render_compact, unpack_views
from splatpack.codecs.storage import attribute_bytes
from splatpack.core import GaussianSet, SplatpackError
from splatpack.formats import detect_format, load_scene, path_size, save_scene
from splatpack.formats.ply import ply_size
from splatpack.metrics import psnr
from splatpack.render import render_gaussians
from splatpack.spk import read_spk_info


def spk_info(path: str | Path) -> dict[str, Any]:
    """Sections, sizes and the ratio to the equivalent PLY (SH degree 3, 248 B per Gaussian)."""
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


def scene_info(path: str | Path) -> dict[str, Any]:
    """What ``splatpack info`` reports: :func:`spk_info` for a ``.spk``; for any other scene
    (read with :func:`~splatpack.formats.load_scene`) its format, Gaussian count, SH degree,
    bounding box of the centres, size on disk and bytes per Gaussian."""
    fmt = detect_format(path)
    if fmt.name == "spk":
        return spk_info(path)
    gs = load_scene(path)
    n, total = len(gs), path_size(path)
    means = gs.means.detach().cpu().numpy().astype(np.float64)
    return {
        "file": str(path),
        "format": fmt.name,
        "num_gaussians": n,
        "sh_degree": gs.sh_degree,
        "bbox_min": means.min(0).tolist() if n else None,
        "bbox_max": means.max(0).tolist() if n else None,
        "total_bytes": total,
        "bytes_per_gaussian": total / max(n, 1),
    }


def format_scene_info(d: dict[str, Any]) -> str:
    """The text ``splatpack info`` prints for :func:`scene_info`'s dict."""
    if "sections" in d:
        return format_info(d)
    lines = [
        f"{d['file']}: {d['format']}, {d['num_gaussians']:,} Gaussians, SH degree {d['sh_degree']}, "
        f"{d['total_bytes']:,} bytes ({d['bytes_per_gaussian']:.2f} B/Gaussian)"
    ]
    if d["bbox_min"] is not None:
        lo, hi = (", ".join(f"{v + 0.0:.3g}" for v in d[k]) for k in ("bbox_min", "bbox_max"))  # + 0.0: no "-0"
        lines.append(f"  bounding box: ({lo}) .. ({hi})")
    return "\n".join(lines)


def relative_size(size: int, reference: int) -> str:
    """``3.1× smaller`` or, for a file that grew (a tiny scene's headers), ``1.4× larger``."""
    if size <= reference:
        return f"{reference / max(size, 1):.1f}× smaller"
    return f"{size / max(reference, 1):.1f}× larger"


def format_info(d: dict[str, Any]) -> str:
    """The text ``splatpack info`` prints for :func:`spk_info`'s dict."""
    ply = d["ply_equivalent_bytes"]
    lines = [
        f"{d['file']}: {d['kind']}, format {d['version']}, {d['num_gaussians']:,} Gaussians, "
        f"{d['total_bytes']:,} bytes ({d['bytes_per_gaussian']:.2f} B/Gaussian)",
        f"  equivalent PLY (SH 3): {ply:,} bytes → {relative_size(d['total_bytes'], ply)}",
        f"  {'section':<22}{'codec':<8}{'bytes':>12}{'share':>8}",
    ]
    for s in d["sections"]:
        lines.append(
            f"  {s['name']:<22}{s['codec']:<8}{s['bytes']:>12,}{100 * s['bytes'] / max(d['total_bytes'], 1):>7.1f}%"
        )
    lines.append("  by attribute: " + ", ".join(f"{k} {v:,}" for k, v in d["attributes"].items()))
    return "\n".join(lines)


def export(path: str | Path, out: str | Path, format: str | None = None, max_views: int = 8) -> dict[str, Any]:
    """Write the scene at ``path`` to ``out`` as ``format`` (ply|splat|spz|sog; from the
    extension when None). For a compact scene, also the PSNR between renders of the baked SH and
    of the colour field from its stored training cameras."""
    path = Path(path)
    if not path.exists():
        raise SplatpackError("file does not exist", path)
    scene = None
    if detect_format(path).name == "spk":
        codec, scene = read_scene(path)
        gs = codec.gaussians(scene)
    else:
        gs = load_scene(path)
    save_scene(gs, out, format)
    result: dict[str, Any] = {"out": str(out), "num_gaussians": len(gs), "bytes": path_size(out)}
    if isinstance(scene, CompactScene) and scene.field is not None and scene.views is not None:
        result.update(baked_vs_field(scene, gs, max_views))
    return result


def baked_vs_field(scene, gs: GaussianSet, max_views: int = 8) -> dict[str, Any]:
    """PSNR of the baked-SH render against the colour-field render over stored cameras."""
    views = unpack_views(scene.views)
    bg = torch.tensor(scene.meta.get("background", [0.0, 0.0, 0.0]), dtype=torch.float32)
    ps = []
    step = max(1, len(views) // max_views)
    for vm, K, w, h in views[::step][:max_views]:
        ref = render_compact(scene, vm, K, w, h, bg, "cpu")[0].clamp(0, 1)
        baked = render_gaussians(gs, vm, K, w, h, sh_degree=3, background=bg, backend="cpu")[0].clamp(0, 1)
        ps.append(psnr(baked, ref))
    return {"baked_vs_field_psnr": float(np.mean(ps)), "views": len(ps)}


def decompress(path: str | Path, out: str | Path, max_views: int = 8) -> dict[str, Any]:
    """Write ``out`` as an INRIA PLY with the scene's SH degree (a compact scene's colour field is
    baked to degree 3). Returns the baked-vs-field PSNR when measurable."""
    r = export(path, out, "ply", max_views)
    r["ply"] = r.pop("out")
    return r


def format_export(r: dict[str, Any]) -> str:
    """One line for the result of :func:`export` or :func:`decompress`."""
    msg = f"wrote {r.get('out', r.get('ply'))}: {r['num_gaussians']:,} Gaussians, {r['bytes']:,} bytes"
    if "baked_vs_field_psnr" in r:
        msg += f"; baked SH vs colour field: {r['baked_vs_field_psnr']:.2f} dB PSNR over {r['views']} views"
    return msg
