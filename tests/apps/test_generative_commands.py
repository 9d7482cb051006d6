"""``splatpack prior train`` and ``splatpack generate`` (:mod:`splatpack.apps.commands.prior`,
:mod:`splatpack.apps.commands.generate`): a tiny model trained on a folder of objects with its
model card and held-out split, samples written as .spk files with a contact sheet, and one-line
errors for bad input."""

from __future__ import annotations

import imageio.v3 as iio
import pytest
import torch
from format_scenes import random_set
from prior_models import one_torch_thread

from splatpack.apps import cli
from splatpack.formats import load_scene, save_scene
from splatpack.generative.model import SHIPPED_MODEL, GenerativeModel


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder of four objects with a LICENSES.txt, and a model trained on it for two steps."""
    data = tmp_path_factory.mktemp("objects")
    for i, name in enumerate(["apple", "bell", "cone", "drum"]):
        save_scene(random_set(300, seed=i), data / f"{name}.splat")
    (data / "LICENSES.txt").write_text("object licence\napple CC0-1.0\nbell CC-BY-4.0\ncone CC0-1.0\ndrum MIT\n")
    out = tmp_path_factory.mktemp("model") / "m.pt"
    argv = ["prior", "train", str(data), "--out", str(out), "--steps", "2", "--augmentations", "1", "--held-out", "1"]
    argv += ["--grid", "16x8"]
    assert cli.main(argv) == 0
    return data, out


def test_prior_train_writes_a_model_and_its_card(trained, capsys):
    data, out = trained
    model = GenerativeModel.load(out)
    assert len(model.info["train"]) == 3 and len(model.info["held_out"]) == 1
    assert set(model.info["train"]) | set(model.info["held_out"]) == {"apple", "bell", "cone", "drum"}
    card = out.with_suffix(".md").read_text()
    assert model.content_hash in card and "| drum | MIT |" in card and "| apple | CC0-1.0 |" in card
    assert "Held-out objects (1;" in card and f"| {model.info['held_out'][0]} |" in card
    assert not out.with_name("m.checkpoint.pt").exists()
    assert (model.config.layout.height, model.config.layout.width) == (16, 8)


def test_prior_train_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert cli.main(["prior", "train", str(tmp_path / "none"), "--out", str(tmp_path / "m.pt")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none'}: not a folder of splats\n"
    assert cli.main(["prior", "train", str(tmp_path), "--out", str(tmp_path / "m.pt")]) == 2
    assert "folder holds no splats" in capsys.readouterr().err
    assert cli.main(["prior", "train", str(tmp_path), "--out", str(tmp_path / "m.bin")]) == 2
    assert "a model is a .pt file" in capsys.readouterr().err
    assert cli.main(["prior", "train", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--grid", "12x8"]) == 2
    assert "multiples of 8" in capsys.readouterr().err


def test_generate_writes_samples_and_a_contact_sheet(trained, tmp_path, capsys):
    _, model_path = trained
    out = tmp_path / "samples"
    argv = ["generate", "--model", str(model_path), "-n", "2", "--steps", "3", "--seed", "4", "-o", str(out)]
    assert cli.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["sample_000.spk", "sample_001.spk", "sheet.png"]
    a = load_scene(out / "sample_000.spk")
    assert len(a) == 16 * 8
    sheet = iio.imread(out / "sheet.png")
    assert sheet.shape[:2] == (192, 2 * 192) and sheet.std() > 0
    model = GenerativeModel.load(model_path)
    expected = model.generate(2, 3, 1.0, seed=4)[0]
    assert torch.allclose(a.means.sort(0).values, expected.means.sort(0).values, atol=0.05)
    assert cli.main([*argv[:-1], str(out)]) == 0  # its own folder is replaced
    assert "wrote" in capsys.readouterr().out


def test_generate_refuses_a_corrupted_model_and_a_foreign_folder(trained, tmp_path, capsys):
    _, model_path = trained
    bad = tmp_path / "bad.pt"
    data = bytearray(model_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    assert cli.main(["generate", "--model", str(bad), "-n", "1", "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: ") and err.count("\n") == 1
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert cli.main(["generate", "--model", str(model_path), "-n", "1", "-o", str(tmp_path / "mine")]) == 2
    assert "notes.txt" in capsys.readouterr().err and (tmp_path / "mine" / "notes.txt").exists()


def test_the_shipped_model_is_small_and_carries_its_card():
    model = GenerativeModel.load(SHIPPED_MODEL)
    assert SHIPPED_MODEL.stat().st_size < 5_000_000
    assert len(model.info["train"]) == 27 and len(model.info["held_out"]) == 6
    card = SHIPPED_MODEL.with_suffix(".md").read_text()
    assert model.content_hash in card
    for name in model.info["train"] + model.info["held_out"]:
        assert f"| {name} | {model.info['licences'][name]} |" in card


def test_generate_defaults_to_the_shipped_model(tmp_path, capsys):
    assert cli.main(["generate", "-n", "1", "--steps", "2", "-o", str(tmp_path / "s")]) == 0
    assert len(load_scene(tmp_path / "s" / "sample_000.spk")) == 64 * 64
    assert GenerativeModel.load(SHIPPED_MODEL).content_hash[:12] in capsys.readouterr().out
