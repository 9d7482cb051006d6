"""SPZ axes against PlayCanvas splat-transform (npm), the reader Spark and the PlayCanvas engine
share: our SPZ read by splat-transform and written as INRIA PLY, and its SPZ of our PLY read by
us, land every Gaussian where it started. SPZ stores right-up-back (RUB) coordinates and INRIA
PLY right-down-front (RDF); a reader that skipped the conversion (gsply 0.4.6 does) would see
``y`` and ``z`` negated. Skips when npm is absent or the package cannot be installed."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from format_scenes import max_err, min_quat_dot, random_set

from splatpack.formats import load_scene, save_scene

MEANS_TOL = 0.5 / 4096 + 1e-6  # SPZ's 24-bit fixed point with 12 fractional bits


@pytest.fixture(scope="module")
def splat_transform():
    if shutil.which("npm") is None:
        pytest.skip("npm is absent: @playcanvas/splat-transform cannot be installed")
    from splatpack.apps.bench import splat_transform_bin
    from splatpack.core.errors import SplatpackError

    try:
        return str(splat_transform_bin())  # installed from the npm registry on first use
    except SplatpackError as e:
        pytest.skip(f"@playcanvas/splat-transform could not be installed: {e}")


def _convert(exe: str, src, dst) -> None:
    r = subprocess.run([exe, "-w", str(src), str(dst)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and dst.exists(), r.stderr or r.stdout


def _asymmetric():
    gs = random_set(200, degree=0, seed=5)
    gs.means[:, 1] += 2.0  # far from the origin in +y and −z: a sign flip cannot hide in the tolerance
    gs.means[:, 2] -= 3.0
    return gs


def test_our_spz_read_by_splat_transform(splat_transform, tmp_path):
    gs = _asymmetric()
    save_scene(gs, tmp_path / "ours.spz")
    _convert(splat_transform, tmp_path / "ours.spz", tmp_path / "theirs.ply")
    back = load_scene(tmp_path / "theirs.ply")
    assert max_err(back.means, gs.means) <= MEANS_TOL
    assert min_quat_dot(back.quats, gs.quats) >= 0.9999


def test_splat_transform_spz_read_by_us(splat_transform, tmp_path):
    gs = _asymmetric()
    save_scene(gs, tmp_path / "ours.ply")
    _convert(splat_transform, tmp_path / "ours.ply", tmp_path / "theirs.spz")
    back = load_scene(tmp_path / "theirs.spz")
    assert max_err(back.means, gs.means) <= MEANS_TOL
    assert min_quat_dot(back.quats, gs.quats) >= 0.9999
