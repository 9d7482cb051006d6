"""``splatpack render`` on bad run folders: one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from splatpack.apps.cli import main
from splatpack.core import GaussianSet
from splatpack.formats import save_scene


def run_folder(tmp_path: Path, scene_json: str | None) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    save_scene(GaussianSet.random_in_box(20, np.full(3, -0.5), np.full(3, 0.5), 0, 0), run / "point_cloud.ply")
    if scene_json is not None:
        (run / "scene.json").write_text(scene_json)
    return run


def one_error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"data": "/x", "format": "blen', "not a readable scene description"),
        ("[1, 2]", "a JSON object is expected"),
        (json.dumps({"data": "/x", "format": "blender", "downscale": 1}), "'test_every' is missing"),
        (json.dumps({"data": "/x", "format": "blender", "downscale": "4", "test_every": 8}), "'downscale' is missing"),
    ],
    ids=["truncated", "not an object", "missing key", "wrong type"],
)
def test_a_broken_scene_json_is_one_line(tmp_path, capsys, text, problem) -> None:
    run = run_folder(tmp_path, text)
    line = one_error_line(capsys, ["render", str(run)])
    assert str(run / "scene.json") in line and problem in line


def test_an_empty_scene_is_one_line_not_a_traceback(tmp_path, capsys) -> None:
    none = GaussianSet(
        torch.zeros(0, 3),
        torch.zeros(0, 4),
        torch.zeros(0, 3),
        torch.zeros(0),
        torch.zeros(0, 1, 3),
        torch.zeros(0, 0, 3),
    )
    empty = save_scene(none, tmp_path / "empty.sog")
    line = one_error_line(capsys, ["render", str(empty), "--orbit", "--frames", "2"])
    assert "holds no Gaussians" in line
