"""Seeded mutation fuzzing of every scene reader behind ``load_scene`` (issue 16).

Each format starts from one small valid file written by splatpack's own writers (gsply for the
compressed PLY; the compact ``.spk`` from the tests' synthetic streams). Every case applies one to
four mutations drawn from a seeded RNG, so case ``i`` of format ``f`` is the same input on every
machine:

* bytes: bit flips, random bytes, "interesting" integers and floats (0, 1, 0x7f…, 0xff…, 2³¹,
  NaN, ∞) written as u8/u16/u32/f32 at random offsets, truncation, chunk deletion, duplication
  and insertion, a random tail;
* structure: a member of a zip (``.sog``, ``.npz``) mutated and the zip rebuilt; an ``.spk``'s meta
  JSON (a value replaced by a huge, negative, wrong-typed or missing one) or one section payload
  mutated and the container rewritten with valid checksums, so the decoders behind the checksum
  are reached.

Every case runs ``load_scene`` in a worker process, with its peak RSS reset before the case
(``/proc/self/clear_refs``) and read after it (``VmHWM``), and a 20 s alarm. The outcome is
``loaded`` (the CLI's exit 0), ``refused`` (a ``SplatpackError``: one line, exit 2), or anything
else: a crash, which is a bug. Writes the counts, the slowest case and the largest RSS per format
to ``--out`` and exits 1 if any case crashed, timed out or passed 2 GB.

    python benchmarks/fuzz_readers.py --cases 10000 --workers 2   # the documented run
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing as mp
import os
import random
import signal
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

MAX_SECONDS = 20
MAX_RSS_MB = 2048
SUFFIX = {
    "ply": ".ply",
    "compressed-ply": ".compressed.ply",
    "splat": ".splat",
    "spz3": ".spz",
    "spz4": ".spz",
    "sog": ".sog",
    "npz": ".npz",
    "spk-grid": ".spk",
    "spk-compact": ".spk",
    "spk-latent": ".spk",
    "spk-prior": ".spk",
}
INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e38, -1e38, 1e-45]
JSON_VALUES = [10**12, -1, 0, 2**63, 1e308, -1e308, "x", None, [], {}, [1, 2], True, 3.5]


# --------------------------------------------------------------------------- valid seed files


def latent_seed_scene(fallback):
    """2,000 Gaussians of the shared fish object, whose latents the shipped model's latent coder
    codes (section ``latent.ans``); ``fallback`` where the shared data is absent (packed latents)."""
    fish = Path(__file__).resolve().parents[2] / "shared" / "splats" / "objects10k" / "fish.splat"
    if not fish.is_file():
        return fallback
    import torch

    from splatpack.formats import load_scene

    return load_scene(fish).subset(torch.arange(2000))


def seed_files(folder: Path) -> dict[str, bytes]:
    """One small valid file per format."""
    import torch

    from splatpack.core import GaussianSet
    from splatpack.formats import save_scene
    from splatpack.formats.sog import save_sog
    from splatpack.formats.spz import save_spz

    g = torch.Generator().manual_seed(0)
    n = 64
    gs = GaussianSet(
        means=torch.randn(n, 3, generator=g),
        quats=torch.randn(n, 4, generator=g),
        scales=torch.randn(n, 3, generator=g) * 0.5 - 4,
        opacities=torch.randn(n, generator=g),
        sh0=torch.randn(n, 1, 3, generator=g) * 0.5,
        shN=torch.randn(n, 3, 3, generator=g) * 0.1,
    )
    out = {}
    for name, write in (
        ("ply", lambda p: save_scene(gs, p)),
        ("splat", lambda p: save_scene(gs, p)),
        ("spz3", lambda p: save_spz(gs, p, version=3)),
        ("spz4", lambda p: save_spz(gs, p, version=4)),
        ("sog", lambda p: save_sog(gs, p)),
        ("npz", lambda p: save_scene(gs, p)),
        ("spk-grid", lambda p: save_scene(gs, p, "spk", quality=3)),
    ):
        path = folder / f"seed-{name}{SUFFIX[name]}"
        write(path)
        out[name] = path.read_bytes()
    try:  # splatpack reads PlayCanvas' compressed PLY but does not write it: gsply does
        import gsply

        f4 = lambda t: t.detach().numpy().astype("f4")
        data = gsply.GSData.from_arrays(
            f4(gs.means), f4(gs.scales), f4(gs.quats), f4(gs.opacities), f4(gs.sh0[:, 0]), f4(gs.shN), format="ply"
        )
        path = folder / "seed.compressed.ply"
        gsply.plywrite(path, data, compressed=True)
        out["compressed-ply"] = path.read_bytes()
    except ImportError:
        pass
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from compact_scenes import make_code

    from splatpack.codecs.compact import write_compact

    path = folder / "seed-compact.spk"
    write_compact(path, make_code(48, 0, field_cfg={"grid": {"n_levels": 4, "log2_hashmap_size": 10}}))
    out["spk-compact"] = path.read_bytes()
    from splatpack.codecs.latent import LATENT_SCENE_CODEC, LatentCodecConfig

    path = folder / f"seed-spk-latent{SUFFIX['spk-latent']}"
    LATENT_SCENE_CODEC.encode(latent_seed_scene(gs), LatentCodecConfig(quality=3)).write(path)
    out["spk-latent"] = path.read_bytes()
    from splatpack.codecs.prior.codec import PRIOR_SCENE_CODEC

    path = folder / f"seed-spk-prior{SUFFIX['spk-prior']}"
    PRIOR_SCENE_CODEC.encode(gs).write(path)  # the shipped value model
    out["spk-prior"] = path.read_bytes()
    return out


# --------------------------------------------------------------------------- mutations


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(9)
    pos = rng.randrange(len(b) + 1) if b else 0
    if kind == 0 and b:  # bit flips
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1 and b:  # random bytes
        for _ in range(rng.randint(1, 16)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind in (2, 3):  # an interesting integer or float
        if kind == 2:
            v = rng.choice(INTERESTING)
            fmt = rng.choice(["<B", "<H", "<I", ">I", "<i"])
            v = v & {"<B": 0xFF, "<H": 0xFFFF}.get(fmt, 0xFFFFFFFF)
            chunk = struct.pack(fmt.replace("i", "I"), v)
        else:
            chunk = struct.pack(rng.choice(["<f", ">f", "<d"]), rng.choice(FLOATS))
        b[pos : pos + len(chunk)] = chunk
    elif kind == 4:  # truncation
        del b[pos:]
    elif kind == 5:  # delete a chunk
        del b[pos : pos + rng.randint(1, 256)]
    elif kind == 6 and b:  # duplicate a chunk
        i = rng.randrange(len(b))
        b[pos:pos] = b[i : i + rng.randint(1, 512)]
    elif kind == 7:  # insert random bytes
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:  # a random tail
        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096)))
    return bytes(b)


def mutate_json(value, rng: random.Random):
    """``value`` with one leaf replaced by a hostile one, or one key deleted."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        copy = dict(value)
        if rng.random() < 0.15:
            del copy[key]
        else:
            copy[key] = mutate_json(value[key], rng)
        return copy
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        copy = list(value)
        copy[i] = mutate_json(value[i], rng)
        return copy
    return rng.choice(JSON_VALUES)


def mutate_zip(data: bytes, rng: random.Random) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = [(i, z.read(i)) for i in z.infolist()]
    k = rng.randrange(len(members))
    info, body = members[k]
    if info.filename.endswith(".json") and rng.random() < 0.7:
        body = json.dumps(mutate_json(json.loads(body), rng)).encode()
    else:
        body = mutate_bytes(body, rng)
    members[k] = (info, body)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i, b in members:
            z.writestr(i.filename, b)
    return buf.getvalue()


def mutate_spk(data: bytes, rng: random.Random, scratch: Path) -> bytes:
    from splatpack.spk.container import Section, SpkReader, write_spk

    src, dst = scratch / "in.spk", scratch / "out.spk"
    src.write_bytes(data)
    r = SpkReader(src)
    try:
        meta, n = r.meta, r.num_gaussians
        sections = [Section(e.name, e.codec, r.read(e.name), e.required) for e in r.sections]
    finally:
        r.close()
    if rng.random() < 0.5:
        meta = mutate_json(meta, rng)
        if not isinstance(meta, dict):
            meta = {"kind": meta}
    else:
        k = rng.randrange(len(sections))
        s = sections[k]
        sections[k] = Section(s.name, s.codec, mutate_bytes(s.payload, rng), s.required)
    if rng.random() < 0.1:
        n = rng.choice([0, 1, n * 2, 2**31])
    write_spk(dst, sections, meta, n)
    return dst.read_bytes()


def mutated(fmt: str, seed: bytes, case: int, base_seed: int, scratch: Path) -> bytes:
    rng = random.Random(f"{base_seed}:{fmt}:{case}")
    data = seed
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        structured = fmt in ("sog", "npz", "spk-grid", "spk-compact", "spk-prior", "spk-latent") and rng.random() < 0.6
        try:
            if structured and fmt.startswith("spk"):
                data = mutate_spk(data, rng, scratch)
            elif structured:
                data = mutate_zip(data, rng)
            else:
                data = mutate_bytes(data, rng)
        except Exception:  # an earlier mutation broke the structure: mutate the bytes instead
            data = mutate_bytes(data, rng)
    return data


# --------------------------------------------------------------------------- running cases

_STATE: dict = {}


def _seed_names(folder: Path) -> dict[str, str]:
    names = {f: f"seed-{f}{SUFFIX[f]}" for f in SUFFIX}
    names.update({"compressed-ply": "seed.compressed.ply", "spk-compact": "seed-compact.spk"})
    return {f: n for f, n in names.items() if (folder / n).is_file()}


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _timeout(*_):
    raise TimeoutError(f"over {MAX_SECONDS} s")


def _init_worker(seed_dir: str) -> None:
    import torch

    torch.set_num_threads(1)
    from splatpack.core.errors import SplatpackError
    from splatpack.formats import load_scene

    seeds = {fmt: (Path(seed_dir) / name).read_bytes() for fmt, name in _seed_names(Path(seed_dir)).items()}
    _STATE.update(seeds=seeds, load=load_scene, error=SplatpackError, scratch=Path(tempfile.mkdtemp()))
    signal.signal(signal.SIGALRM, _timeout)


def run_case(job: tuple[str, int, int]) -> dict:
    fmt, case, base_seed = job
    scratch = _STATE["scratch"]
    data = mutated(fmt, _STATE["seeds"][fmt], case, base_seed, scratch)
    path = scratch / f"case{SUFFIX[fmt]}"
    path.write_bytes(data)
    _reset_peak_rss()
    t0 = time.perf_counter()
    signal.alarm(MAX_SECONDS)
    try:
        _STATE["load"](path)
        outcome, detail = "loaded", ""
    except _STATE["error"] as e:
        outcome, detail = "refused", str(e)[:200]
    except TimeoutError as e:
        outcome, detail = "timeout", str(e)
    except BaseException as e:  # every other exception is the bug this looks for
        outcome, detail = "crashed", f"{type(e).__name__}: {str(e)[:200]}"
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - t0
    return {
        "format": fmt,
        "case": case,
        "outcome": outcome,
        "detail": detail,
        "seconds": seconds,
        "rss_mb": _peak_rss_mb(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000, help="mutated inputs per format")
    ap.add_argument("--formats", nargs="*", default=list(SUFFIX), choices=list(SUFFIX))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fuzz_readers.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as seed_dir:
        seeds = seed_files(Path(seed_dir))
        formats = [f for f in args.formats if f in seeds]
        jobs = [(f, i, args.seed) for f in formats for i in range(args.cases)]
        t0 = time.perf_counter()
        ctx = mp.get_context("spawn")
        with ctx.Pool(args.workers, initializer=_init_worker, initargs=(seed_dir,), maxtasksperchild=2000) as pool:
            rows = list(pool.imap_unordered(run_case, jobs, chunksize=16))
    summary = {}
    for f in formats:
        mine = [r for r in rows if r["format"] == f]
        counts = {k: sum(r["outcome"] == k for r in mine) for k in ("loaded", "refused", "crashed", "timeout")}
        slow = max(mine, key=lambda r: r["seconds"])
        big = max(mine, key=lambda r: r["rss_mb"])
        bad = [r for r in mine if r["outcome"] in ("crashed", "timeout") or r["rss_mb"] > MAX_RSS_MB]
        summary[f] = {
            "cases": len(mine),
            **counts,
            "max_seconds": round(slow["seconds"], 3),
            "max_rss_mb": round(big["rss_mb"], 1),
            "failures": [{k: r[k] for k in ("case", "outcome", "detail", "seconds", "rss_mb")} for r in bad[:20]],
        }
    result = {
        "command": " ".join(["python", "benchmarks/fuzz_readers.py", *sys.argv[1:]]),
        "seed": args.seed,
        "cases_per_format": args.cases,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "limits": {"seconds": MAX_SECONDS, "rss_mb": MAX_RSS_MB},
        "formats": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for f, s in summary.items():
        print(
            f"{f:15s} {s['cases']:6d} cases: {s['loaded']:5d} loaded, {s['refused']:5d} refused, "
            f"{s['crashed']} crashed, {s['timeout']} timeouts; slowest {s['max_seconds']:.2f} s, "
            f"peak RSS {s['max_rss_mb']:.0f} MB"
        )
    return 1 if any(s["failures"] for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
