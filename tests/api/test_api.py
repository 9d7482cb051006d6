"""The public API (:mod:`splatpack.api`): the README's example runs as written, and each call
does what it names."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import splatpack
from splatpack.core import GaussianSet

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The first ```python block after the README's "## Python API" heading."""
    text = README.read_text()
    section = text[text.index("## Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def small_scene(n: int = 200, seed: int = 0) -> GaussianSet:
    return GaussianSet.random_in_box(n, np.full(3, -0.5), np.full(3, 0.5), 1, seed)


def test_public_names_do_not_shadow_the_packages() -> None:
    import splatpack.compress
    import splatpack.render
    import splatpack.train

    assert callable(splatpack.compress_scene) and callable(splatpack.train_scene) and callable(splatpack.render_scene)
    assert splatpack.compress.__name__ == "splatpack.compress" and splatpack.render.__name__ == "splatpack.render"


def test_public_names_are_bound_lazily() -> None:
    assert set(splatpack.__all__) >= {
        "load_scene",
        "save_scene",
        "compress_scene",
        "train_scene",
        "render_scene",
        "GaussianSet",
    }
    assert splatpack.load_scene is splatpack.api.load_scene
    with pytest.raises(AttributeError):
        splatpack.no_such_name  # noqa: B018


def test_compress_then_load_gives_the_same_count(tmp_path: Path) -> None:
    gs = small_scene()
    out = splatpack.compress_scene(gs, tmp_path / "s.spk", quality=6)
    back = splatpack.load_scene(out)
    assert out == tmp_path / "s.spk" and len(back) == len(gs) and back.sh_degree == gs.sh_degree


def test_save_scene_writes_every_format_load_scene_reads(tmp_path: Path) -> None:
    gs = small_scene()
    for ext in ("ply", "splat", "spz", "sog", "spk"):
        path = splatpack.save_scene(gs, tmp_path / f"s.{ext}")
        assert len(splatpack.load_scene(path)) == len(gs)


def test_render_is_an_image_in_unit_range() -> None:
    from splatpack.render.camera import orbit_cameras

    gs = small_scene()
    poses, K = orbit_cameras(gs.means, 2, 32, 50.0)
    img = splatpack.render_scene(gs, poses[0], K, 32, 32, backend="cpu")
    assert img.shape == (32, 32, 3) and torch.all((img >= 0) & (img <= 1)) and img.sum() > 0


@pytest.mark.slow
def test_readme_example_runs(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        env: dict = {}
        exec(compile(readme_example(), "README.md", "exec"), env)
    finally:
        os.chdir(cwd)
    assert (tmp_path / "outputs/demo/scene.spk").is_file() and (tmp_path / "outputs/demo/scene.spz").is_file()
    assert env["image"].shape == (256, 256, 3) and env["metrics"]["psnr"] > 10
