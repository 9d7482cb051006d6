"""The format table (:mod:`splatpack.formats.registry`): :func:`detect_format` by content before
extension, :func:`save_scene` by extension or ``format=``, one-line errors, :func:`scene_format`,
:func:`path_size`, and the seam "a new format is one module plus one line in ``FORMATS``"."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from format_scenes import random_set

from splatpack.core import GaussianSet, SplatpackError
from splatpack.formats import (
    FORMATS,
    WRITE_FORMATS,
    SceneFormat,
    detect_format,
    load_scene,
    path_size,
    registry,
    save_scene,
    scene_format,
)
from splatpack.formats.ply import save_ply

FIELDS = ("means", "quats", "scales", "opacities", "sh0", "shN")


def one_line_error(excinfo: pytest.ExceptionInfo, path: Path, message: str) -> None:
    assert str(excinfo.value) == f"{path}: {message}" and "\n" not in str(excinfo.value)


# ---- the table -------------------------------------------------------------------------------------
def test_every_format_has_a_unique_name_and_a_reader():
    names = [f.name for f in FORMATS]
    assert len(set(names)) == len(names) == 7
    assert set(names) == {"spk", "npz", "compressed-ply", "ply", "spz", "sog", "splat"}
    for f in FORMATS:
        assert isinstance(f, SceneFormat) and callable(f.read) and callable(f.sniff), f.name
        assert f.extensions and all(e.startswith(".") for e in f.extensions), f.name
        assert scene_format(f.name) is f
    assert tuple(f.name for f in FORMATS if f.write is not None) == WRITE_FORMATS
    assert "compressed-ply" not in WRITE_FORMATS and scene_format("compressed-ply").write is None


def test_scene_format_of_an_unknown_name_is_an_error():
    with pytest.raises(SplatpackError) as err:
        scene_format("nope")
    assert str(err.value) == f"unknown format 'nope' (one of {', '.join(f.name for f in FORMATS)})"


# ---- detection: content before extension -------------------------------------------------------------
@pytest.mark.parametrize(
    "fmt,misleading_name", [("ply", "x.splat"), ("spz", "x.ply"), ("sog", "x.spz"), ("spk", "x.sog")]
)
def test_detect_format_reads_the_content_before_the_extension(tmp_path, fmt, misleading_name):
    """A file's magic wins over its extension: e.g. a ``.splat``-named file starting with ``ply`` is PLY."""
    gs = random_set(64, degree=1, seed=3)
    path = save_scene(gs, tmp_path / f"a{scene_format(fmt).extensions[0]}").rename(tmp_path / misleading_name)
    assert path.is_file() and detect_format(path) is scene_format(fmt)
    assert len(load_scene(path)) == 64


def test_a_splat_named_ply_file_loads_as_ply_exactly(tmp_path):
    gs = random_set(50, degree=2, seed=1)
    path = save_ply(gs, tmp_path / "x.splat")
    assert path.read_bytes()[:3] == b"ply" and detect_format(path).name == "ply"
    back = load_scene(path)
    assert back.sh_degree == 2  # a .splat reader would have dropped SH rest
    for name in FIELDS:
        assert torch.equal(getattr(back, name), getattr(gs, name)), name


def test_a_folder_is_sog_when_it_holds_meta_json(tmp_path):
    folder = save_scene(random_set(30), tmp_path / "folder", format="sog")
    assert folder.is_dir() and (folder / "meta.json").is_file()
    assert detect_format(folder).name == "sog" and len(load_scene(folder)) == 30
    assert detect_format(folder / "meta.json").name == "sog"  # the meta.json path itself
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "means_l.webp").write_bytes(b"")
    for call in (detect_format, load_scene):
        with pytest.raises(SplatpackError) as err:
            call(tmp_path / "plain")
        one_line_error(err, tmp_path / "plain", "folder holds no meta.json (not a SOG folder)")


def test_missing_and_unrecognised_files(tmp_path):
    with pytest.raises(SplatpackError) as err:
        detect_format(tmp_path / "missing.ply")
    one_line_error(err, tmp_path / "missing.ply", "file does not exist")
    (tmp_path / "x.bin").write_bytes(b"\0" * 64)
    with pytest.raises(SplatpackError) as err:
        detect_format(tmp_path / "x.bin")
    one_line_error(err, tmp_path / "x.bin", "unrecognised splat file (extension '.bin', no known magic)")


# ---- writing: by extension or by name ---------------------------------------------------------------
@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_save_scene_picks_the_writer_by_extension_and_by_name(tmp_path, fmt):
    gs = random_set(64, degree=1, seed=3)
    by_ext = save_scene(gs, tmp_path / f"a{scene_format(fmt).extensions[0]}")
    assert detect_format(by_ext).name == fmt and len(load_scene(by_ext)) == 64
    by_name = save_scene(gs, tmp_path / f"b{scene_format(fmt).extensions[0]}", format=fmt)
    assert path_size(by_name) == path_size(by_ext)


@pytest.mark.parametrize("name,fmt", [("x.ply", "compressed-ply"), ("x.compressed.ply", "compressed-ply")])
def test_save_scene_refuses_a_read_only_format(tmp_path, name, fmt):
    with pytest.raises(SplatpackError) as err:
        save_scene(random_set(4), tmp_path / name, format=fmt)
    one_line_error(err, tmp_path / name, f"cannot write format {fmt!r} (one of {', '.join(WRITE_FORMATS)})")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,shown", [("x.obj", "'.obj'"), ("noext", "'none'")])
def test_save_scene_refuses_an_unknown_extension(tmp_path, name, shown):
    with pytest.raises(SplatpackError) as err:
        save_scene(random_set(4), tmp_path / name)
    one_line_error(err, tmp_path / name, f"cannot write format {shown} (one of {', '.join(WRITE_FORMATS)})")
    with pytest.raises(SplatpackError, match="cannot write format 'nope'"):
        save_scene(random_set(4), tmp_path / "x.ply", format="nope")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt,name", [("ply", "a.ply"), ("splat", "a.splat"), ("spz", "a.spz"), ("sog", "a.sog")])
def test_save_and_load_splats_dispatch(tmp_path, fmt, name):
    gs = random_set(64, degree=1, seed=3)
    path = save_scene(gs, tmp_path / name)
    assert detect_format(path).name == fmt and len(load_scene(path)) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # atomic: no temporary left behind
    other = save_scene(gs, tmp_path / "other.bin", format=fmt)  # format given explicitly
    if fmt != "splat":  # .splat has no magic: only its extension identifies it
        assert detect_format(other).name == fmt and len(load_scene(other)) == 64


def test_dispatch_errors(tmp_path):
    with pytest.raises(SplatpackError, match="does not exist"):
        load_scene(tmp_path / "missing.spz")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SplatpackError, match="unrecognised"):
        load_scene(tmp_path / "x.txt")
    with pytest.raises(SplatpackError, match="cannot write"):
        save_scene(random_set(4), tmp_path / "x.obj")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SplatpackError, match=r"meta\.json"):
        load_scene(tmp_path / "empty")
    for name in ("x.splat", "x.spz"):
        with pytest.raises(SplatpackError, match="empty"):
            save_scene(random_set(0), tmp_path / name)
    assert len(load_scene(save_scene(random_set(0), tmp_path / "e.sog"))) == 0
    bad = random_set(4)
    bad.means[0, 0] = float("nan")
    for name in ("x.splat", "x.spz", "x.sog"):
        with pytest.raises(SplatpackError, match="non-finite"):
            save_scene(bad, tmp_path / name)


def test_path_size_of_a_file_and_of_a_folder(tmp_path):
    gs = random_set(40)
    ply = save_scene(gs, tmp_path / "a.ply")
    assert path_size(ply) == ply.stat().st_size
    folder = save_scene(gs, tmp_path / "folder", format="sog")
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) >= 6 and path_size(folder) == sum(p.stat().st_size for p in files)


# ---- the seam: a new format is one module plus one line in FORMATS ----------------------------------
def toy_format(store: dict[Path, GaussianSet], writable: bool = True) -> SceneFormat:
    """A format whose files are ``TOY1`` followed by nothing; the scenes live in ``store``."""

    def write(gs: GaussianSet, path: Path, **options) -> Path:
        path.write_bytes(b"TOY1")
        store[path] = gs
        return path

    return SceneFormat(
        name="toy",
        extensions=(".toy",),
        sniff=lambda head, path: head.startswith(b"TOY1"),
        read=lambda path: store[path],
        write=write if writable else None,
    )


def test_a_format_added_to_the_table_is_read_and_written(tmp_path, monkeypatch):
    store: dict[Path, GaussianSet] = {}
    toy = toy_format(store)
    monkeypatch.setattr(registry, "FORMATS", (*registry.FORMATS, toy))
    gs = random_set(10)
    path = save_scene(gs, tmp_path / "a.toy")  # by extension
    assert path.read_bytes() == b"TOY1" and store[path] is gs
    assert detect_format(path) is toy and scene_format("toy") is toy and load_scene(path) is gs
    other = save_scene(gs, tmp_path / "b.bin", format="toy")  # by name, content-detected
    assert detect_format(other) is toy and load_scene(other) is gs


def test_a_read_only_format_added_to_the_table_is_not_written(tmp_path, monkeypatch):
    store: dict[Path, GaussianSet] = {}
    monkeypatch.setattr(registry, "FORMATS", (*registry.FORMATS, toy_format(store, writable=False)))
    with pytest.raises(SplatpackError, match=r"cannot write format '\.toy'"):
        save_scene(random_set(4), tmp_path / "a.toy")
    with pytest.raises(SplatpackError, match="cannot write format 'toy'"):
        save_scene(random_set(4), tmp_path / "a.bin", format="toy")
    (tmp_path / "c.toy").write_bytes(b"TOY1")
    store[tmp_path / "c.toy"] = gs = random_set(3)
    assert load_scene(tmp_path / "c.toy") is gs
