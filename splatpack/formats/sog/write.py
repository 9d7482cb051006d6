"""The SOG v2 writer: Gaussians in Morton order, 256-entry 1-D k-means codebooks, the SH palette,
lossless WebP textures and ``meta.json`` (layout: :mod:`splatpack.formats.sog`)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from splatpack.compress.kmeans import kmeans_1d, vector_quantise
from splatpack.compress.quantise import signed_log1p, smallest_three
from splatpack.core import GaussianSet
from splatpack.core.atomic import atomic_folder, atomic_write_bytes
from splatpack.core.frames import canonical_gaussians
from splatpack.formats.sog.textures import (
    SH_COEFFS,
    encode_webp,
    morton_order,
    pack_texture,
    sh_palette_size,
    texture_size,
)
from splatpack.formats.splat import quantize_u8, require_finite, unit_quats


def encode_sog(
    gs: GaussianSet, *, iterations: int = 10, seed: int = 0, canonical_frames: bool = True
) -> dict[str, bytes]:
    """File name → bytes of a SOG v2 encoding of ``gs`` (``meta.json`` and the WebP images).

    ``canonical_frames``: store each Gaussian in its canonical local frame (scales decreasing,
    |w| largest; the same covariance, :mod:`splatpack.core.frames`), which any SOG reader decodes
    as usual and which codes smaller (README)."""
    g = canonical_gaussians(gs.detach()) if canonical_frames else gs.detach()
    n = len(g)
    order = morton_order(g.means.double().cpu().numpy())
    g = g.subset(torch.from_numpy(order))
    w, h = texture_size(n)
    files: dict[str, bytes] = {}

    lt = signed_log1p(g.means.double().cpu().numpy())
    mins = lt.min(axis=0) if n else np.zeros(3)
    maxs = lt.max(axis=0) if n else np.zeros(3)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    u16 = np.clip(np.rint((lt - mins) / span * 65535.0), 0, 65535).astype(np.uint16)
    files["means_l.webp"] = encode_webp(pack_texture([u16[:, i] & 0xFF for i in range(3)], w, h))
    files["means_u.webp"] = encode_webp(pack_texture([u16[:, i] >> 8 for i in range(3)], w, h))

    small, big = smallest_three(unit_quats(g.quats.cpu().numpy()))
    quat_bytes = quantize_u8(255.0 * (small * np.sqrt(2.0) * 0.5 + 0.5))
    quat_tags = 252 + big.astype(np.uint8)
    files["quats.webp"] = encode_webp(pack_texture([quat_bytes[:, i] for i in range(3)], w, h, quat_tags))

    scale_book, scale_lab = kmeans_1d(g.scales.double().cpu().numpy(), 256, iterations)
    files["scales.webp"] = encode_webp(pack_texture([scale_lab[:, i] for i in range(3)], w, h))

    dc_book, dc_lab = kmeans_1d(g.sh0[:, 0, :].double().cpu().numpy(), 256, iterations)
    alpha = quantize_u8(torch.sigmoid(g.opacities.double()).cpu().numpy() * 255.0)
    files["sh0.webp"] = encode_webp(pack_texture([dc_lab[:, i] for i in range(3)], w, h, alpha))

    meta: dict = {
        "version": 2,
        "asset": {"generator": "splatpack"},
        "count": n,
        "means": {
            "mins": [float(v) for v in mins],
            "maxs": [float(v) for v in maxs],
            "files": ["means_l.webp", "means_u.webp"],
        },
        "scales": {"codebook": [float(v) for v in scale_book], "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": [float(v) for v in dc_book], "files": ["sh0.webp"]},
    }
    bands = g.sh_degree
    if bands > 0 and n > 0:
        d = SH_COEFFS[bands]
        # palette vectors are channel-major, as splat-transform's f_rest columns: R_0..R_{D-1}, G_.., B_..
        vec = g.shN.float().cpu().numpy().transpose(0, 2, 1).reshape(n, 3 * d)
        centroids, labels = vector_quantise(vec, sh_palette_size(n), iterations, seed)
        book, clab = kmeans_1d(centroids, 256, iterations)  # clab [P, 3D]
        p = len(centroids)
        rows = math.ceil(p / 64)
        cimg = np.zeros((rows * 64 * d, 4), dtype=np.uint8)
        cimg[: p * d, :3] = clab.reshape(p, 3, d).transpose(0, 2, 1).reshape(p * d, 3)
        cimg[: p * d, 3] = 255
        files["shN_centroids.webp"] = encode_webp(cimg.reshape(rows, 64 * d, 4))
        lab16 = labels.astype(np.uint16)
        files["shN_labels.webp"] = encode_webp(pack_texture([lab16 & 0xFF, lab16 >> 8], w, h))
        meta["shN"] = {
            "count": p,
            "bands": bands,
            "codebook": [float(v) for v in book],
            "files": ["shN_centroids.webp", "shN_labels.webp"],
        }
    files["meta.json"] = json.dumps(meta).encode()
    return files


def save_sog(
    gs: GaussianSet, path: str | Path, *, iterations: int = 10, seed: int = 0, canonical_frames: bool = True
) -> Path:
    """Write ``gs`` as SOG v2: a zip bundle for ``*.sog``, else ``meta.json`` and images (next to
    ``path`` when it names a ``.json`` file, inside the folder ``path`` otherwise).

    The bundle is written atomically, and so is the folder: built aside and swapped in whole
    (:func:`~splatpack.core.atomic.atomic_folder`), which replaces an existing folder only when it
    holds nothing but ``meta.json`` and ``.webp`` files. Next to a ``.json`` file the set is
    atomic too: the images are named after their content (``scene.<hash>.means_l.webp``; the
    meta names its files), written first, and the ``.json`` is swapped in last — before that
    instant it names the old images, after it the new ones. Then the images of the replaced
    ``.json`` that carry such a name are removed. ``iterations``, ``seed`` and
    ``canonical_frames``: as :func:`encode_sog`."""
    path = Path(path)
    require_finite(gs, path)
    files = encode_sog(gs, iterations=iterations, seed=seed, canonical_frames=canonical_frames)
    if path.suffix.lower() == ".sog":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("meta.json", files.pop("meta.json"))
            for name, data in files.items():
                zf.writestr(name, data)
        atomic_write_bytes(path, buf.getvalue())
        return path
    if path.suffix.lower() == ".json":
        _save_beside_json(files, path)
        return path
    with atomic_folder(path, may_replace=lambda name: name == "meta.json" or name.endswith(".webp")) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return path


def _tagged_names(meta: dict) -> set[str]:
    """The file names a SOG meta lists."""
    return {f for v in meta.values() if isinstance(v, dict) for f in v.get("files", []) if isinstance(f, str)}


def _save_beside_json(files: dict[str, bytes], path: Path) -> None:
    """Images under content-derived names next to ``path``, then ``path`` (see :func:`save_sog`)."""
    meta = json.loads(files.pop("meta.json"))
    tag = hashlib.sha256(b"".join(files[n] for n in sorted(files))).hexdigest()[:12]
    names = {n: f"{path.stem}.{tag}.{n}" for n in files}
    for section in meta.values():
        if isinstance(section, dict) and "files" in section:
            section["files"] = [names[f] for f in section["files"]]
    try:  # the images the .json there names now, to remove once it no longer does
        old = _tagged_names(json.loads(path.read_bytes())) if path.is_file() else set()
    except (OSError, ValueError):
        old = set()
    for n, data in files.items():
        atomic_write_bytes(path.parent / names[n], data)
    atomic_write_bytes(path, json.dumps(meta).encode())  # the switch from the old set to the new
    ours = re.compile(rf"{re.escape(path.stem)}\.[0-9a-f]{{12}}\.[\w.]+\.webp")
    for stale in old - set(names.values()):
        if ours.fullmatch(stale) and "/" not in stale:
            (path.parent / stale).unlink(missing_ok=True)
