"""The seeded mutation harness (benchmarks/fuzz_readers.py) at CI size: every reader behind
load_scene either loads a mutated file or refuses it with a SplatpackError (exit 2) — no other
exception, no case over 20 s or 2 GB. The documented run (10,000 cases per format) is in
benchmarks/results/fuzz_readers.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mutated_files_are_loaded_or_refused_by_every_reader(tmp_path):
    pytest.importorskip("gsply")
    out = tmp_path / "fuzz.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "fuzz_readers.py"),
            "--cases",
            "150",
            "--workers",
            "2",
            "--seed",
            "7",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    result = json.loads(out.read_text())
    formats = result["formats"]
    assert set(formats) >= {
        "ply",
        "compressed-ply",
        "splat",
        "spz3",
        "spz4",
        "sog",
        "npz",
        "spk-grid",
        "spk-compact",
        "spk-latent",
        "spk-prior",
    }
    for name, s in formats.items():
        assert s["cases"] == 150 and s["loaded"] + s["refused"] == 150, (name, s["failures"])
        assert s["refused"] > 0, name  # the mutations reach the readers' checks
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_mutations_are_the_same_on_every_run(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from fuzz_readers import mutated, seed_files
    finally:
        sys.path.pop(0)
    seeds = seed_files(tmp_path)
    for fmt in ("ply", "sog", "spk-grid"):
        a = [mutated(fmt, seeds[fmt], i, 0, tmp_path) for i in range(5)]
        b = [mutated(fmt, seeds[fmt], i, 0, tmp_path) for i in range(5)]
        assert a == b and len(set(a)) == 5 and seeds[fmt] not in a
