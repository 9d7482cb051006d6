"""Data-parallel training of the generative model (issue 14): ``--nproc`` processes against one
process at the same global batch, on the objects10k training split (``prior train``'s defaults:
64×64 grids, batch 8, seed 0), fewer steps than the shipped model.

Both runs draw the same batches; the autoencoder's Bernoulli samples and the diffusion noise
differ (per-rank generators), so the loss curves should agree in distribution, not bit for bit.
Reports the per-stage loss curves (autoencoder, prior, latent coder) (means over 25-step windows), their largest relative gap,
whether the ranks ended with identical weights (the trainer checks their digests and fails
otherwise) and the wall time of each run.

Usage: ``python benchmarks/prior_distributed.py [--steps 200] [--nproc 2]``; results in
``benchmarks/results/prior_distributed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from splatpack.apps.generative import load_objects
from splatpack.core.distributed import init_process_group, parameter_digest, ranks_from_environment, spawn
from splatpack.generative.bae import BAEConfig
from splatpack.generative.diffusion import BernoulliSchedule, DenoiserConfig
from splatpack.generative.grids import GridLayout, held_out_split
from splatpack.generative.model import ModelConfig
from splatpack.generative.training import TrainingConfig, train_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "splats" / "objects10k"
RESULTS = ROOT / "benchmarks" / "results"
WINDOW = 25
STAGES = ("bae", "prior", "coder")


def config(steps: int, augmentations: int) -> TrainingConfig:
    model = ModelConfig.for_layout(GridLayout(), BAEConfig(), DenoiserConfig(), BernoulliSchedule())
    return TrainingConfig(
        model=model, augmentations=augmentations, bae_steps=steps, prior_steps=steps, coder_steps=steps, batch=8
    )


def run(data: str, steps: int, augmentations: int, out: str) -> None:
    """One rank (or the single process): train, then rank 0 writes the losses and a digest."""
    ranks = ranks_from_environment()
    threads = max(1, (os.cpu_count() or 1) // ranks.world_size)
    torch.set_num_threads(threads)
    init_process_group(ranks, "cpu")
    names, objects = load_objects(Path(data))
    train_names, _ = held_out_split(names, 6)
    train = [gs for n, gs in zip(names, objects) if n in set(train_names)]
    losses: dict[str, list[float]] = {"bae": [], "prior": [], "coder": []}
    t0 = time.perf_counter()
    model = train_model(
        train, config(steps, augmentations), on_step=lambda s, i, n, loss: losses[s].append(loss), ranks=ranks
    )
    seconds = time.perf_counter() - t0
    digest = parameter_digest(model.tensors())
    Path(f"{out}.rank{ranks.rank}").write_text(digest)
    if ranks.is_main:
        Path(out).write_text(json.dumps({"losses": losses, "seconds": seconds, "digest": digest}))


def windows(values: list[float]) -> list[float]:
    return [round(sum(values[i : i + WINDOW]) / len(values[i : i + WINDOW]), 5) for i in range(0, len(values), WINDOW)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--steps", type=int, default=200, help="steps of each stage")
    ap.add_argument("--augmentations", type=int, default=2)
    ap.add_argument("--nproc", type=int, default=2)
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data}: not found (../shared holds objects10k)")
    tmp = RESULTS / ".prior_distributed"
    tmp.mkdir(parents=True, exist_ok=True)
    one, many = tmp / "one.json", tmp / "many.json"
    run(str(args.data), args.steps, args.augmentations, str(one))
    spawn(args.nproc, run, str(args.data), args.steps, args.augmentations, str(many))
    a, b = json.loads(one.read_text()), json.loads(many.read_text())
    report = {"steps_per_stage": args.steps, "global_batch": 8, "augmentations": args.augmentations, "window": WINDOW}
    report["processes"] = args.nproc
    report["seconds"] = {"1": round(a["seconds"], 1), str(args.nproc): round(b["seconds"], 1)}
    report["cpu_count"] = os.cpu_count()
    for stage in STAGES:
        wa, wb = windows(a["losses"][stage]), windows(b["losses"][stage])
        gap = max(abs(x - y) / abs(x) for x, y in zip(wa, wb))
        report[stage] = {"one_process": wa, f"{args.nproc}_processes": wb, "largest_relative_gap": round(gap, 4)}
    digests = {tmp.joinpath(f"many.json.rank{r}").read_text() for r in range(args.nproc)}
    report["ranks_identical_weights"] = len(digests) == 1
    (RESULTS / "prior_distributed.json").write_text(json.dumps(report, indent=1) + "\n")
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    print(json.dumps({k: v for k, v in report.items() if k not in STAGES}))
    for stage in STAGES:
        print(stage, "largest relative gap between window means:", report[stage]["largest_relative_gap"])


if __name__ == "__main__":
    main()
