"""SHA-256 of the files splatpack's commands write, to show that a refactor changed no output.

Runs the installed ``splatpack`` command (so it measures the command-line behaviour, whatever the
module layout) on ``../shared/splats/plant.splat`` and ``biker.spz``:

* ``compress`` at qualities 0, 6 and ``sog``;
* ``export`` of each input, and of its quality-6 ``.spk``, to every write format;
* ``train default --steps 300`` (``point_cloud.ply``; the default seed 0, one thread so the
  kernels' sums run in one order), and the compact and full presets on the same scene.

Usage: ``python benchmarks/behaviour_hashes.py [--out FILE] [--skip-train | --only-train]
[--entry MODULE:FUNCTION]``; the hashes go to
``benchmarks/results/behaviour_hashes.json`` (or ``--out``) as ``{label: sha256}``. Compare two
such files with ``--compare A B``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "splats"
INPUTS = {"plant": SHARED / "plant.splat", "biker": SHARED / "biker.spz"}
QUALITIES = ("0", "6", "sog")
FORMATS = ("ply", "splat", "spz", "sog")
TRAIN_RUNS = {"default": [], "compact": ["--config", "compact"], "full": ["--config", "full"]}


def digest(path: Path) -> str:
    """SHA-256 of a file, of a folder's files (relative names and contents, sorted), or of a zip's
    members (names and contents: a zip stores the time it was written)."""
    h = hashlib.sha256()
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                h.update(name.encode() + b"\0" + z.read(name))
    elif path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


ENTRY = "splatpack.apps.cli:entrypoint"  # --entry names another (an older layout's) CLI


def splatpack(*args: str, cwd: Path) -> None:
    module, function = ENTRY.split(":")
    code = f"import sys; from {module} import {function} as main; sys.argv[0] = 'splatpack'; main()"
    subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def run(tmp: Path, skip_train: bool, only_train: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, src in INPUTS.items() if not only_train else ():
        for q in QUALITIES:
            spk = tmp / f"{name}_q{q}.spk"
            splatpack("compress", str(src), "-o", str(spk), "--quality", q, cwd=tmp)
            out[f"compress {name} q{q}"] = digest(spk)
            print(f"compress {name} q{q}", out[f"compress {name} q{q}"][:16], flush=True)
        for source in (src, tmp / f"{name}_q6.spk"):
            for fmt in FORMATS:
                dst = tmp / f"{source.stem}_export.{fmt}"
                splatpack("export", str(source), "-o", str(dst), "--format", fmt, cwd=tmp)
                label = f"export {source.name} {fmt}"
                out[label] = digest(dst)
                print(label, out[label][:16], flush=True)
    if not skip_train:
        for label, extra in TRAIN_RUNS.items():
            run_dir = tmp / f"train_{label}"
            splatpack("train", "default", "--steps", "300", "--threads", "1", "--out", str(run_dir), *extra, cwd=tmp)
            for f in ("point_cloud.ply", "scene.spk"):
                if (run_dir / f).is_file():
                    out[f"train {label} {f}"] = digest(run_dir / f)
                    print(f"train {label} {f}", out[f"train {label} {f}"][:16], flush=True)
    return out


def compare(a: Path, b: Path) -> int:
    x, y = json.loads(a.read_text()), json.loads(b.read_text())
    bad = 0
    for k in sorted(set(x) | set(y)):
        same = x.get(k) == y.get(k)
        bad += not same
        print(f"{'same' if same else 'DIFFERENT':>9}  {k}")
    print(f"{len(set(x) | set(y)) - bad} same, {bad} different")
    return 1 if bad else 0


def main() -> int:
    global ENTRY
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "behaviour_hashes.json")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--only-train", action="store_true")
    p.add_argument("--entry", default=ENTRY, help="module:function of the CLI to run")
    p.add_argument("--compare", nargs=2, type=Path)
    args = p.parse_args()
    ENTRY = args.entry
    if args.compare:
        return compare(*args.compare)
    missing = [str(p) for p in INPUTS.values() if not p.is_file()]
    if missing:
        print(f"error: {missing[0]}: missing (this benchmark needs ../shared)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="splatpack-hashes-"))
    try:
        hashes = run(tmp, args.skip_train, args.only_train)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(hashes, indent=1) + "\n")
    os.replace(tmp_out, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
