"""Grid-scene encode and decode speed: this tree against a baseline commit, in the same run.

For each input splat and ``--quality`` level, a fresh process per measurement (OpenMP reads its
wait policy when it loads) runs :func:`splatpack.codecs.grid.write_grid_scene` (PLAS sort and
plane coding, as ``splatpack compress``), then :func:`~splatpack.codecs.grid.read_grid_scene`;
it reports wall and CPU seconds of both, the file's bytes and MD5 (the same bytes, or not,
as the baseline), and the decode seconds per 100k Gaussians. The baseline's ``splatpack/`` is
taken from ``git archive BASELINE`` into a temporary folder; its numba kernels compile there
in a warm-up run first. Old and new alternate, ``--repeats`` times, so that both see the same
load (the load average is recorded with each run); medians are reported. ``--cold`` adds one
run of this tree with an empty numba cache: the first ``compress`` after an install.
``--effort-probe 7 6 5`` codes each input once per JPEG XL effort on one grid (this tree, one
thread): bytes per section and coding CPU seconds, for choosing the effort (lossless coding: the
decoded scene, hence PSNR, does not depend on it).

Writes ``benchmarks/results/encode_speed.json``.

Usage:  python benchmarks/encode_speed.py [--input PATH ...] [--qualities 6 0] [--baseline REV]
        [--repeats 3] [--cold] [--effort-probe 7 6 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "splats"
#: the commit before the speed changes of issue 15 (item 6)
BASELINE = "a188a06"
POLICY_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

# one measurement, in a child process whose splatpack is the tree on its PYTHONPATH
CHILD = r"""
import hashlib, json, os, sys, time
import splatpack
from splatpack.codecs.grid import GridCodecConfig, read_grid_scene, write_grid_scene
from splatpack.formats import load_scene
src, quality, out, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
quality = int(quality) if quality.isdigit() else quality
gs = load_scene(src)
if limit:
    gs = gs.subset(list(range(min(limit, len(gs)))))
load = os.getloadavg()[0]
w, c = time.perf_counter(), time.process_time()
size = write_grid_scene(out, gs, GridCodecConfig.from_quality(quality))
enc_w, enc_c = time.perf_counter() - w, time.process_time() - c
w, c = time.perf_counter(), time.process_time()
back = read_grid_scene(out)
dec_w, dec_c = time.perf_counter() - w, time.process_time() - c
print(json.dumps({
    "gaussians": len(gs), "bytes": size, "md5": hashlib.md5(open(out, "rb").read()).hexdigest(),
    "encode_seconds": enc_w, "encode_cpu_seconds": enc_c, "decode_seconds": dec_w,
    "decode_cpu_seconds": dec_c, "decode_seconds_per_100k": dec_w * 1e5 / len(back),
    "load_average": load, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
}))
"""


def baseline_tree(rev: str, dest: Path) -> str:
    """``splatpack/`` of ``rev`` extracted into ``dest``; returns the full commit."""
    commit = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True, check=True)
    data = subprocess.run(["git", "archive", rev, "splatpack"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return commit.stdout.strip()


def measure(tree: Path, src: Path, quality: str, out: Path, limit: int = 0, env: dict | None = None) -> dict:
    """One child run of :data:`CHILD` with ``tree`` first on the path, without an inherited
    OpenMP policy (each tree sets its own, or libgomp's default applies)."""
    base = {k: v for k, v in os.environ.items() if k not in POLICY_VARS}
    env = {**base, "PYTHONPATH": str(tree), **(env or {})}
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), quality, str(out), str(limit)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"measurement failed ({tree}): {r.stderr.strip()[-600:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def summary(runs: list[dict]) -> dict:
    keys = ("encode_seconds", "encode_cpu_seconds", "decode_seconds", "decode_seconds_per_100k")
    return {
        **{f"median_{k}": statistics.median(r[k] for r in runs) for k in keys},
        "bytes": runs[0]["bytes"],
        "md5": runs[0]["md5"],
        "runs": runs,
    }


def effort_probe(src: Path, qualities: list[str], efforts: list[int]) -> list[dict]:
    """Bytes per section and coding CPU seconds of ``src`` at each JPEG XL effort, on one grid."""
    import numba

    import splatpack.codecs.grid.encode as enc
    from splatpack.codecs.grid import GridCodecConfig
    from splatpack.formats import load_scene

    numba.set_num_threads(1)
    gs = load_scene(src)
    grid, sort_info = enc.scene_grid(gs, GridCodecConfig.from_quality(6))
    rows = []
    for q in qualities:
        for effort in efforts:
            cfg = GridCodecConfig.from_quality(int(q) if q.isdigit() else q, jxl_effort=effort)
            c = time.process_time()
            sections, _ = enc.encode_grid_scene(gs, cfg, grid, sort_info=sort_info)
            sizes = {s.name: len(s.payload) for s in sections}
            row = {"input": src.name, "quality": q, "effort": effort, "coding_cpu_seconds": time.process_time() - c}
            rows.append({**row, "payload_bytes": sum(sizes.values()), "sections": sizes})
            print(f"{src.name} q{q} effort {effort}: {row['coding_cpu_seconds']:.2f} s CPU, {sum(sizes.values()):,} B")
    return rows


def git_head() -> str:
    r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, nargs="*", default=[SHARED / "plant.splat"])
    ap.add_argument("--qualities", nargs="*", default=["6", "0"])
    ap.add_argument("--baseline", default=BASELINE, help="the commit to compare with.")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="also one run of this tree with an empty numba cache.")
    ap.add_argument("--effort-probe", type=int, nargs="*", default=[], metavar="E", help="JPEG XL efforts to probe.")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/encode_speed.json")
    args = ap.parse_args()

    from splatpack.core.atomic import atomic_write_text

    rows = []
    with tempfile.TemporaryDirectory(prefix="encode-speed-") as tmp:
        tmp = Path(tmp)
        old_tree = tmp / "baseline"
        old_commit = baseline_tree(args.baseline, old_tree)
        trees = {"baseline": old_tree, "this tree": ROOT}
        for src in args.input:
            for name, tree in trees.items():  # warm-up: numba compiles into each tree's cache
                t = time.perf_counter()
                measure(tree, src, args.qualities[0], tmp / "warm.spk", limit=4000)
                print(f"warm-up {name}: {time.perf_counter() - t:.1f} s", flush=True)
            for q in args.qualities:
                runs: dict[str, list] = {name: [] for name in trees}
                for i in range(args.repeats):
                    for name, tree in trees.items():
                        r = measure(tree, src, q, tmp / "out.spk")
                        runs[name].append(r)
                        print(
                            f"{src.name} q{q} #{i + 1} {name:<10} encode {r['encode_seconds']:6.2f} s "
                            f"(CPU {r['encode_cpu_seconds']:6.2f} s), decode {r['decode_seconds']:.2f} s, "
                            f"{r['bytes']:,} B, load {r['load_average']:.1f}",
                            flush=True,
                        )
                row = {"input": src.name, "quality": q, **{name: summary(v) for name, v in runs.items()}}
                old, new = row["baseline"], row["this tree"]
                row["same_bytes"] = old["md5"] == new["md5"]
                row["encode_speedup"] = old["median_encode_seconds"] / new["median_encode_seconds"]
                row["encode_cpu_ratio"] = old["median_encode_cpu_seconds"] / new["median_encode_cpu_seconds"]
                if args.cold:
                    with tempfile.TemporaryDirectory(dir=tmp) as cache:
                        t = time.perf_counter()
                        cold = measure(ROOT, src, q, tmp / "cold.spk", env={"NUMBA_CACHE_DIR": cache})
                        cold["process_seconds"] = time.perf_counter() - t
                    row["this tree, empty numba cache"] = cold
                rows.append(row)
    result = {
        "what": "grid-scene encode (PLAS sort + plane coding, as `splatpack compress`) and decode, "
        "this tree against a baseline commit, alternating fresh processes; medians",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "baseline_commit": old_commit,
        "tree_commit": git_head(),
        "tree_dirty": bool(
            subprocess.run(
                ["git", "status", "--porcelain", "splatpack"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
        ),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "rows": rows,
        "jxl_effort_probe": [r for src in args.input for r in effort_probe(src, args.qualities, args.effort_probe)]
        if args.effort_probe
        else [],
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(
            f"{row['input']} q{row['quality']}: encode {row['baseline']['median_encode_seconds']:.2f} s → "
            f"{row['this tree']['median_encode_seconds']:.2f} s ({row['encode_speedup']:.2f}×, CPU "
            f"{row['encode_cpu_ratio']:.2f}×), same bytes {row['same_bytes']}, decode "
            f"{row['this tree']['median_decode_seconds_per_100k']:.2f} s per 100k"
        )
    print(args.out)


if __name__ == "__main__":
    main()
