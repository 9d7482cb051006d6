"""Commands end to end: ``compress --finetune`` reads its input once; the PNG writer; export's report line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import splatpack.formats
from splatpack.apps.cli import main
from splatpack.apps.commands import compress
from splatpack.apps.inspect import format_export
from splatpack.captures.synthetic import make_synthetic_scene
from splatpack.core import GaussianSet
from splatpack.core.images import save_png, to_uint8
from splatpack.formats import save_scene
from splatpack.train import Trainer


def counting(fn, calls: list):
    def wrapper(*args, **kwargs):
        calls.append(args[0])
        return fn(*args, **kwargs)

    return wrapper


def test_compress_finetune_reads_its_input_once(tmp_path, monkeypatch, capsys):
    """One read of FILE (the command's); the trainer starts from those Gaussians, and the scene it
    writes is byte for byte the one it writes when it reads ``init_from`` itself."""
    root = make_synthetic_scene(tmp_path / "scene", width=40, height=40, n_train=8, n_test=2)
    scene = tmp_path / "s.yaml"
    scene.write_text(f"name: s\ndata: {root}\nformat: blender\noverrides: {{eval_lpips: false, threads: 1}}\n")
    gs = GaussianSet.random_in_box(300, np.full(3, -1.0), np.full(3, 1.0), sh_degree=1, seed=0)
    src = save_scene(gs, tmp_path / "in.ply")
    calls: list = []
    monkeypatch.setattr(compress, "load_scene", counting(compress.load_scene, calls))
    monkeypatch.setattr(splatpack.formats, "load_scene", counting(splatpack.formats.load_scene, calls))
    args = ["compress", src, "-o", tmp_path / "a.spk", "--finetune", scene, "--finetune-steps", "3", "--backend", "cpu"]
    assert main([str(a) for a in args]) == 0
    assert len(calls) == 1
    assert "fine-tuned 3 steps" in capsys.readouterr().out

    class ReadsInitFrom(Trainer):  # the trainer as before: it reads cfg.init_from itself
        def __init__(self, *a, initial=None, **kw):
            super().__init__(*a, **kw)

    monkeypatch.setattr(compress, "Trainer", ReadsInitFrom)
    args[3] = tmp_path / "b.spk"
    assert main([str(a) for a in args]) == 0
    assert len(calls) == 3
    assert (tmp_path / "a.spk").read_bytes() == (tmp_path / "b.spk").read_bytes()


def test_png_writer_rounds_and_clamps(tmp_path):
    import imageio.v3 as iio

    img = torch.tensor([[[0.0, 0.5, 1.0], [-0.2, 1.3, 0.2]]])  # [1, 2, 3]
    expected = np.array([[[0, 128, 255], [0, 255, 51]]], dtype=np.uint8)
    assert np.array_equal(to_uint8(img), expected)
    save_png(tmp_path / "sub" / "a.png", img)
    assert np.array_equal(iio.imread(tmp_path / "sub" / "a.png"), expected)


@pytest.mark.parametrize(
    "result, line",
    [
        ({"out": "a.sog", "num_gaussians": 1234, "bytes": 5678}, "wrote a.sog: 1,234 Gaussians, 5,678 bytes"),
        (
            {"ply": "a.ply", "num_gaussians": 1, "bytes": 2, "baked_vs_field_psnr": 40.123, "views": 8},
            "wrote a.ply: 1 Gaussians, 2 bytes; baked SH vs colour field: 40.12 dB PSNR over 8 views",
        ),
    ],
)
def test_export_report_line(result, line):
    assert format_export(result) == line


@pytest.mark.parametrize("command", ["export", "decompress", "compress"])
def test_an_output_link_is_written_through_only_with_follow_symlinks(tmp_path, capsys, command):
    src = save_scene(
        GaussianSet.random_in_box(50, np.full(3, -1.0), np.ones(3), sh_degree=0, seed=2), tmp_path / "a.ply"
    )
    suffix = ".spk" if command == "compress" else ".ply"
    real, link = tmp_path / f"real{suffix}", tmp_path / f"link{suffix}"
    real.write_bytes(b"old")
    link.symlink_to(real)
    assert main([command, str(src), "-o", str(link)]) == 2
    assert "symbolic link" in capsys.readouterr().err and real.read_bytes() == b"old"
    assert main([command, str(src), "-o", str(link), "--follow-symlinks"]) == 0
    assert link.is_symlink() and real.read_bytes() != b"old"
    assert len(splatpack.formats.load_scene(link)) == 50
