"""Residual-VQ codebooks on real Gaussians: EMA (Compact-3DGS) against SimVQ.

Takes the scales (log) and rotations (sign-canonical unit quaternions) of a trained scene —
a training checkpoint (``checkpoint.pt``) or an INRIA PLY — and quantises them with both
codebook kinds (6 stages × 64 codes, k-means initialised), then runs ``--steps`` codebook
updates on the data as the last phase of training does (EMA: moving averages; SimVQ: Adam on
the codebook loss, lr 1e-3). Reports per stage the fraction of codes in use and the
quantisation error. Writes ``benchmarks/results/rvq_codebooks.json``.

Usage:  python benchmarks/rvq_codebooks.py outputs/bench/lego-compact/checkpoint.pt [--steps 200]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_geometry(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(log scales [N, 3], quaternions [N, 4]) from a checkpoint or a PLY."""
    if path.suffix == ".pt":
        state = torch.load(path, map_location="cpu", weights_only=False)
        return state["params"]["scales"].float(), state["params"]["quats"].float()
    from splatpack.formats.ply import load_ply

    gs = load_ply(path)
    return gs.scales.float(), gs.quats.float()


def run(x: torch.Tensor, kind: str, steps: int, seed: int = 0) -> dict:
    from splatpack.compress.rvq import ResidualVQ, ResidualVQConfig, codebook_usage

    torch.manual_seed(seed)
    vq = ResidualVQ(x.shape[1], ResidualVQConfig(kind=kind))
    vq.init_kmeans(x, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(vq.parameters(), lr=1e-3) if kind == "simvq" else None
    _, idx0 = vq.quantize(x)
    usage0 = codebook_usage(idx0, 64)
    for _ in range(steps):
        _, _, loss = vq(x)
        if opt is not None:
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        xhat, idx = vq.quantize(x)
    usage = codebook_usage(idx, 64)
    return {
        "usage_after_kmeans": [round(u, 4) for u in usage0],
        "usage": [round(u, 4) for u in usage],
        "dead_codes": [int(round((1 - u) * 64)) for u in usage],
        "mse": float(((xhat - x) ** 2).sum(-1).mean()),
        "relative_error": float(((xhat - x).norm(dim=-1) / x.norm(dim=-1).clamp_min(1e-12)).mean()),
    }


def main() -> None:
    from splatpack.core.frames import positive_w_quats

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/rvq_codebooks.json")
    args = ap.parse_args()
    log_scales, quats = load_geometry(args.source)
    data = {"scale (log)": log_scales, "rotation": positive_w_quats(quats)}
    results = {"source": str(args.source), "num_gaussians": len(log_scales), "steps": args.steps}
    for name, x in data.items():
        results[name] = {kind: run(x, kind, args.steps) for kind in ("ema", "simvq")}
        for kind, r in results[name].items():
            print(f"{name:12s} {kind:6s} usage/stage {r['usage']} mse {r['mse']:.3e} rel {r['relative_error']:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
