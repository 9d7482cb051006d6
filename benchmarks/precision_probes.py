"""Two probes of the grid codec's remaining redundancy, measured before building either.

1. **Positions as a set along the Hilbert curve.** With ``order="hilbert"`` the Gaussians lie in
   the grid in the order of their positions' curve index, so the positions could be coded as the
   sorted 3·b-bit Hilbert keys of their b-bit quantised coded values (the order then costs nothing,
   log₂ N! bits fewer than an unordered list). The probe computes the keys
   (:func:`splatpack.compress.curve_order.hilbert_key`), sorts them, and prices the gaps d with a
   static model: the bit length of d entropy-coded, the bits below its leading one raw (and, as
   variants, the top 1–3 of those modelled too, or the bit length conditioned on the previous
   one), and coded for real: the bit lengths through the ``ans`` array codec, the rest packed.
   Against it: the bytes the codec spends on ``grid.means`` and ``grid.means.low`` (the position
   image; the probe led to ``means_encoding="curve-keys"``, :mod:`splatpack.codecs.grid.curve_keys`,
   so the probe codes positions as that image explicitly).

2. **Precision by class of geometry** (render-aware allocation without a side plane). Gaussians are
   classed by quantiles of their size (Σ log s), the two log-scale gaps (anisotropy) and opacity
   (6·6·6·4 classes); each class's mean render sensitivity s̄_c
   (:func:`splatpack.codecs.grid.encode.coded_sensitivity`) sets how many low bits it drops, at
   one bit more than the level spends on positions, scales and rotations: drop bit j when
   s̄_c·4^j < κ·s̄·4 (high-rate allocation, Gersho & Gray §8.3). The depths go through the
   codec's drop plane (``grid.<a>.drop``), whose bytes are subtracted: the bound for a decoder
   that derives the classes from what it has decoded. A probe hands the depths to the encoder
   (``encode_grid_scene(drops=...)``).

Writes ``benchmarks/results/precision_probes.json``. PSNR: 16 orbit views of 256 px against the
original's renders.

Usage:  python benchmarks/precision_probes.py [--input PATH ...] [--quality 6] [--kappas 1 0.5 0.25]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

import splatpack.codecs.grid.encode as grid_encode
from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid import GridCodecConfig, read_grid_scene
from splatpack.codecs.grid.config import AttributeCoding, resolved_low_bits
from splatpack.codecs.grid.curve_keys import gap_streams
from splatpack.codecs.grid.values import float64_numpy
from splatpack.compress.curve_order import hilbert_key
from splatpack.compress.quantise import quantise_channels, signed_log1p
from splatpack.core.atomic import atomic_write_text
from splatpack.formats import load_scene
from splatpack.metrics import mean_psnr_ssim
from splatpack.render import render_views
from splatpack.render.camera import orbit_cameras
from splatpack.spk.arrays import encode_array

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "splats"
REFINED = ("means", "scales", "quats")


def entropy_bits(symbols: np.ndarray) -> float:
    """Total bits of ``symbols`` under their own static histogram."""
    p = np.bincount(symbols) / len(symbols)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum() * len(symbols))


def position_keys(gs, bits: int) -> dict:
    """Bits per Gaussian of the sorted Hilbert keys' gaps under the static models of probe 1."""
    q, _, _ = quantise_channels(signed_log1p(float64_numpy(gs.means)), bits)
    keys = np.sort(hilbert_key(q.astype(np.int64), bits))
    lengths, packed = gap_streams(keys)  # what the codec stores (``means_encoding="curve-keys"``)
    gaps = np.diff(keys.astype(np.int64), prepend=0)
    length = lengths.astype(np.int64)
    below = np.maximum(length - 1, 0)
    n = len(gaps)
    out = {"length_then_raw": (entropy_bits(length) + below.sum()) / n}
    for top in (1, 2, 3):
        t = np.minimum(below, top)
        head = np.where(length > 1, (gaps >> np.maximum(below - t, 0)) & ((1 << t) - 1), 0)
        out[f"length_and_top{top}"] = (entropy_bits(length * 16 + head) + (below - t).sum()) / n
    pairs, prev = Counter(itertools.pairwise(length.tolist())), Counter(length[:-1])
    cond = -sum(c * np.log2(c / prev[a]) for (a, _), c in pairs.items())
    out["length_given_previous"] = (cond + below.sum()) / n
    out["ties"] = float(np.mean(gaps[1:] == 0))
    # coded, not estimated: the bit lengths through the ``ans`` array codec, the rest packed raw
    coded = len(encode_array(lengths[:, None], "ans")) + len(packed)
    out["coded_length_then_raw"] = 8 * coded / n
    return out


def geometry_classes(gs) -> np.ndarray:
    """Class [N] by quantiles of size, the two anisotropy gaps (log-scales sorted) and opacity."""
    ls = np.sort(float64_numpy(gs.scales), 1)
    features = [(ls.sum(1), 6), (ls[:, 2] - ls[:, 1], 6), (ls[:, 1] - ls[:, 0], 6)]
    features.append((float64_numpy(gs.opacities).reshape(-1), 4))
    cls = np.zeros(len(ls), np.int64)
    for x, k in features:
        edges = np.quantile(x, np.linspace(0, 1, k + 1)[1:-1])
        cls = cls * k + np.searchsorted(edges, x)
    return cls


class Renders:
    """PSNR of decoded files against the original's orbit renders (made once)."""

    def __init__(self, gs, views: int = 16, size: int = 256):
        self.cameras, self.size = orbit_cameras(gs.means, views, size, 60.0), size
        self.reference = render_views(gs, *self.cameras, size)

    def psnr(self, path: Path) -> float:
        return mean_psnr_ssim(render_views(read_grid_scene(path), *self.cameras, self.size), self.reference)[0]


def encode(gs, cfg, path: Path, depths: dict | None = None) -> tuple[int, int]:
    """(file bytes, drop-plane bytes) of ``gs`` coded with ``cfg``; ``depths`` per attribute [N]
    replace the encoder's two-class drop depths."""
    drops = None if depths is None else {a: np.asarray(k, np.uint8) for a, k in depths.items()}
    sections, meta = grid_encode.encode_grid_scene(gs, cfg, drops=drops)
    size = EncodedScene(sections, meta, len(gs)).write(path)
    return size, sum(len(s.payload) for s in sections if s.name.endswith(".drop"))


def class_precision(gs, quality: int, kappas: list[float], work: Path) -> dict:
    """Probe 2 at ``quality``: the ladder's points at quality and quality + 1, then each κ."""
    renders = Renders(gs)
    rows = []
    for q in (quality, quality + 1):
        size, _ = encode(gs, GridCodecConfig.from_quality(q), work / "ladder.spk")
        rows.append({"quality": q, "bytes": size, "psnr": renders.psnr(work / "ladder.spk")})
    base = GridCodecConfig.from_quality(quality)
    sens = grid_encode.coded_sensitivity(gs, base)
    cls = geometry_classes(gs)
    count = np.maximum(np.bincount(cls), 1)
    finer = {a: AttributeCoding(getattr(base, a).bits + 1) for a in REFINED}
    cfg = GridCodecConfig.from_quality(quality, **finer, drop_fraction=0.5)
    for kappa in kappas:
        depths, mean_drop = {}, {}
        for a in REFINED:
            mean_class = np.bincount(cls, sens[a], minlength=len(count)) / count
            k = sum(
                (mean_class * 4.0**j < kappa * sens[a].mean() * 4.0).astype(np.int64)
                for j in range(resolved_low_bits(a, getattr(cfg, a), cfg))
            )
            depths[a] = k[cls]
            mean_drop[a] = float(depths[a].mean())
        size, plane = encode(gs, cfg, work / "classes.spk", depths)
        rows.append(
            {
                "kappa": kappa,
                "bytes": size,
                "drop_plane_bytes": plane,
                "bytes_without_plane": size - plane,
                "psnr": renders.psnr(work / "classes.spk"),
                "mean_drop": mean_drop,
            }
        )
        print(rows[-1], flush=True)
    return {"quality": quality, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, nargs="*", default=[SHARED / "plant.splat", SHARED / "biker.spz"])
    ap.add_argument("--quality", type=int, default=6)
    ap.add_argument("--kappas", type=float, nargs="*", default=[1.0, 0.5, 0.25])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/precision_probes.json")
    args = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.input:
            gs = load_scene(path)
            cfg = GridCodecConfig.from_quality(args.quality, means_encoding="grid")
            sections, _ = grid_encode.encode_grid_scene(gs, cfg)
            spent = sum(len(s.payload) for s in sections if s.name in ("grid.means", "grid.means.low"))
            keys = position_keys(gs, cfg.means.bits)
            print(path.name, "positions", round(8 * spent / len(gs), 2), "bits/G coded;", keys, flush=True)
            out[path.name] = {
                "gaussians": len(gs),
                "positions": {"bits": cfg.means.bits, "coded_bits_per_gaussian": 8 * spent / len(gs), "keys": keys},
                "class_precision": class_precision(gs, args.quality, args.kappas, Path(tmp)),
            }
    atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
