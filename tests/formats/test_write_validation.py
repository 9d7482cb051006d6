"""No file splatpack writes is one it then refuses: :func:`~splatpack.core.validate.validate_gaussians`
runs before every writer (:func:`save_scene`, the grid codec behind ``.spk`` and the format writers
called directly), so non-finite values, SH degree 4, inconsistent shapes and empty scenes are one
clear error with nothing left on disk. SOG alone writes an empty scene (and reads it back). A grid
``.spk`` whose meta claims SH degree 4 is refused when read."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from format_scenes import random_set

from splatpack.codecs.base import EncodedScene
from splatpack.codecs.grid import GRID_SCENE_CODEC, GridCodecConfig, write_grid_scene
from splatpack.codecs.grid.encode import encode_grid_scene
from splatpack.core import GaussianSet, SplatpackError
from splatpack.core.validate import validate_gaussians
from splatpack.formats import WRITE_FORMATS, load_scene, save_scene
from splatpack.formats.ply import save_ply
from splatpack.formats.sog import save_sog
from splatpack.formats.spk import write_spk_scene
from splatpack.formats.splat import save_splat
from splatpack.formats.spz import save_spz

FIELDS = ("means", "quats", "scales", "opacities", "sh0", "shN")
#: a file name of each written format (SOG also as a folder)
TARGETS = {"spk": "x.spk", "npz": "x.npz", "ply": "x.ply", "spz": "x.spz", "sog": "x.sog", "splat": "x.splat"}
DIRECT = {
    "save_ply": (save_ply, "x.ply"),
    "save_spz": (save_spz, "x.spz"),
    "save_sog": (save_sog, "x.sog"),
    "save_sog folder": (save_sog, "folder"),
    "save_splat": (save_splat, "x.splat"),
    "write_spk_scene": (write_spk_scene, "x.spk"),
    "write_grid_scene": (lambda gs, path: write_grid_scene(path, gs, GridCodecConfig()), "x.spk"),
}


def test_every_written_format_is_covered():
    assert set(TARGETS) == set(WRITE_FORMATS)


def refused_with_nothing_written(
    write, gs: GaussianSet, folder: Path, name: str, message: str, names_path: bool = True
) -> None:
    """``write(gs, path)`` raises ``path: message`` (``message`` when not ``names_path``) on one
    line and leaves ``folder`` empty."""
    folder.mkdir()
    path = folder / name
    with pytest.raises(SplatpackError) as err:
        write(gs, path)
    assert str(err.value) == (f"{path}: {message}" if names_path else message)
    assert list(folder.iterdir()) == []


def with_value(gs: GaussianSet, field: str, value: float) -> GaussianSet:
    bad = GaussianSet(**{f: getattr(gs, f).clone() for f in FIELDS})
    getattr(bad, field).view(-1)[-1] = value
    return bad


# ---- through save_scene -------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", TARGETS)
@pytest.mark.parametrize("field", FIELDS)
def test_non_finite_values_are_refused_before_writing(tmp_path, fmt, field):
    value = (float("nan"), float("inf"), float("-inf"))[FIELDS.index(field) % 3]
    bad = with_value(random_set(20, degree=1), field, value)
    message = f"cannot write: '{field}' has non-finite values"
    refused_with_nothing_written(save_scene, bad, tmp_path / "out", TARGETS[fmt], message)


@pytest.mark.parametrize("fmt", TARGETS)
def test_sh_degree_above_3_is_refused_before_writing(tmp_path, fmt):
    gs = random_set(20, degree=4)
    message = "cannot write SH degree 4 (shN has 24 coefficients; splatpack writes degrees 0 to 3)"
    refused_with_nothing_written(save_scene, gs, tmp_path / "deg4", TARGETS[fmt], message)
    gs.shN = gs.shN[:, :5]
    message = "cannot write: shN has 5 coefficients per channel (SH degrees 0 to 3 have 0, 3, 8 or 15)"
    refused_with_nothing_written(save_scene, gs, tmp_path / "odd", TARGETS[fmt], message)


@pytest.mark.parametrize("fmt", TARGETS)
def test_an_empty_scene_is_refused_except_by_sog(tmp_path, fmt):
    if fmt == "sog":  # SOG writes and reads back an empty scene (tests/formats/test_format_registry.py)
        for name in ("x.sog", "folder"):
            assert len(load_scene(save_scene(random_set(0), tmp_path / name, format="sog"))) == 0
        return
    message = "cannot write an empty scene (no Gaussians)"
    refused_with_nothing_written(save_scene, random_set(0, degree=1), tmp_path / "out", TARGETS[fmt], message)


@pytest.mark.parametrize(
    ("field", "shape", "message"),
    [
        ("opacities", (20, 1), "'opacities' has shape [20, 1], expected [20]"),
        ("quats", (20, 3), "'quats' has shape [20, 3], expected [20, 4]"),
        ("sh0", (20, 3), "'sh0' has shape [20, 3], expected [20, 1, 3]"),
        ("scales", (19, 3), "'scales' has shape [19, 3], expected [20, 3]"),
        ("shN", (20, 3, 1), "'shN' has shape [20, 3, 1], expected [20, K, 3]"),
        ("means", (60,), "'means' has shape [60], expected [N, 3]"),
    ],
)
def test_inconsistent_shapes_are_refused(tmp_path, field, shape, message):
    gs = random_set(20, degree=1)
    setattr(gs, field, torch.zeros(shape))
    refused_with_nothing_written(save_scene, gs, tmp_path / "out", "x.ply", f"cannot write: {message}")


def test_a_field_that_is_not_a_tensor_is_refused():
    gs = random_set(4)
    gs.sh0 = gs.sh0.numpy()
    with pytest.raises(SplatpackError, match="'sh0' is ndarray, not a tensor"):
        validate_gaussians(gs)


def test_valid_scenes_pass_and_are_left_alone():
    gs = random_set(10, degree=3)
    before = {f: getattr(gs, f).clone() for f in FIELDS}
    validate_gaussians(gs, "x.ply")
    validate_gaussians(random_set(0), allow_empty=True)
    validate_gaussians(GaussianSet(**{f: t.double().requires_grad_() for f, t in before.items()}))
    assert all(torch.equal(getattr(gs, f), before[f]) for f in FIELDS)


# ---- the writers called directly, and the grid codec ------------------------------------------------------
@pytest.mark.parametrize("writer", DIRECT)
def test_direct_writers_refuse_what_save_scene_refuses(tmp_path, writer):
    write, name = DIRECT[writer]
    named = writer != "write_spk_scene"  # it checks in the grid codec, which is not given the path
    nan_dc = with_value(random_set(20, degree=1), "sh0", float("nan"))
    nan = "cannot write: 'sh0' has non-finite values"
    refused_with_nothing_written(write, nan_dc, tmp_path / "nan", name, nan, named)
    deg4 = "cannot write SH degree 4 (shN has 24 coefficients; splatpack writes degrees 0 to 3)"
    refused_with_nothing_written(write, random_set(20, degree=4), tmp_path / "deg4", name, deg4, named)


def test_the_grid_codec_refuses_before_encoding():
    with pytest.raises(SplatpackError, match=r"^cannot write SH degree 4"):
        GRID_SCENE_CODEC.encode(random_set(20, degree=4), GridCodecConfig())
    with pytest.raises(SplatpackError, match=r"^cannot write: 'shN' has non-finite values"):
        GRID_SCENE_CODEC.encode(with_value(random_set(20, degree=2), "shN", float("inf")))


def test_a_grid_spk_claiming_sh_degree_4_is_refused_when_read(tmp_path):
    """What the old writer produced for SH degree 4 (the encoder itself, without the check)."""
    path = tmp_path / "deg4.spk"
    sections, meta = encode_grid_scene(random_set(30, degree=4), GridCodecConfig())
    assert meta["sh_degree"] == 4
    EncodedScene(sections, meta, 30).write(path)
    with pytest.raises(SplatpackError, match=r"sh_degree must be an integer in 0\.\.3, not 4") as err:
        load_scene(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
