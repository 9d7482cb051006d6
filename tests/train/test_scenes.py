"""Scene files (scenes/*.yaml) and the built-in default."""

from __future__ import annotations

from pathlib import Path

import pytest

from splatpack.core.errors import SplatpackError
from splatpack.train.scenes import resolve_scene

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["lego", "fern", "fern-colmap"])
def test_shipped_scene_files(name, shared_dir):
    spec = resolve_scene(ROOT / "scenes" / f"{name}.yaml")
    assert spec.data.is_dir() and spec.data.resolve().is_relative_to(shared_dir.resolve())
    assert spec.config == (ROOT / "configs/default.yaml").resolve()
    assert spec.overrides["steps"] > 0


def test_builtin_default(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLATPACK_CACHE", str(tmp_path))
    for path in ("default", ROOT / "scenes/default.yaml"):
        spec = resolve_scene(path)
        assert spec.format == "blender" and (spec.data / "transforms_train.json").is_file()
        assert spec.data.is_relative_to(tmp_path)


def test_scene_file_errors(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("data: ./nowhere\n")
    with pytest.raises(SplatpackError, match="does not exist"):
        resolve_scene(f)
    f.write_text("data: builtin:teapot\n")
    with pytest.raises(SplatpackError, match="unknown built-in scene"):
        resolve_scene(f)
    f.write_text("data: .\ncolour: red\n")
    with pytest.raises(SplatpackError, match="unknown scene keys: colour"):
        resolve_scene(f)
    with pytest.raises(SplatpackError, match="does not exist"):
        resolve_scene(tmp_path / "missing-folder")
