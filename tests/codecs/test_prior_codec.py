"""Grid scenes coded under a coding model (``kind: prior-grid``, :mod:`splatpack.codecs.prior.codec`),
a value model or a bit-plane model: files decode to the grid codec's Gaussians exactly through
the scene-codec registry; a model that differs from the file's, a truncated file or a corrupt
stream give one SpkError."""

from __future__ import annotations

import pytest
import torch
from grid_scenes import one_numba_thread
from prior_models import one_torch_thread, ship_tiny_model, tiny_model

from splatpack.codecs import read_gaussians
from splatpack.codecs.grid import GridSceneCodec
from splatpack.codecs.prior import codec as prior_codec
from splatpack.codecs.prior.codec import PRIOR_SCENE_CODEC, PriorCodecConfig, transcode_to_grid
from splatpack.codecs.prior.modelfile import save_coding_model
from splatpack.codecs.prior.planes import DEFAULT_LAYOUT
from splatpack.codecs.prior.training import grid_config
from splatpack.core.errors import SplatpackError
from splatpack.spk.container import Section, SpkError, SpkReader, write_spk

STREAM = {"values": "prior.values", "bitplanes": "prior.bits"}


@pytest.fixture(params=["values", "bitplanes"])
def mode(request):
    return request.param


@pytest.fixture(autouse=True)
def shipped(tmp_path, monkeypatch, mode):
    """A tiny untrained model of ``mode`` shipped (in a temporary weights folder) as ``tiny-v1``."""
    ship_tiny_model(tmp_path, monkeypatch, mode=mode)
    with one_torch_thread():
        yield tmp_path


def _write(scene, grid, path):
    with one_numba_thread():
        return PRIOR_SCENE_CODEC.encode(scene, PriorCodecConfig("tiny-v1"), grid_index=grid).write(path)


def test_files_decode_to_the_grid_codecs_gaussians(scene, grid, shipped, mode):
    _write(scene, grid, shipped / "a.spk")
    with one_numba_thread():
        GridSceneCodec().encode(scene, grid_config(), grid).write(shipped / "g.spk")
    with SpkReader(shipped / "a.spk") as r:
        assert r.meta["kind"] == "prior-grid" and r.meta["prior"]["model"] == "tiny-v1"
        assert r.meta["prior"]["mode"] == mode and r.has(STREAM[mode])
    a, g = read_gaussians(shipped / "a.spk"), read_gaussians(shipped / "g.spk")
    for field in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        assert torch.equal(getattr(a, field), getattr(g, field)), field


def test_a_different_model_under_the_files_name_is_refused(scene, grid, shipped, mode):
    _write(scene, grid, shipped / "a.spk")
    save_coding_model(tiny_model(1, mode), DEFAULT_LAYOUT, {}, shipped / "tiny-v1.pt")
    with pytest.raises(SpkError, match=r"coding model 'tiny-v1'.*differs"):
        read_gaussians(shipped / "a.spk")
    other = "bitplanes" if mode == "values" else "values"
    save_coding_model(tiny_model(0, other), DEFAULT_LAYOUT, {}, shipped / "tiny-v1.pt")
    with pytest.raises(SpkError, match=r"coding model 'tiny-v1'.*differs"):
        read_gaussians(shipped / "a.spk")


def _rewrite(src, dst, meta_edit=None, section_edit=None):
    with SpkReader(src) as r:
        meta, n = dict(r.meta), r.num_gaussians
        sections = [Section(s.name, s.codec, r.read(s.name)) for s in r.sections]
    if meta_edit:
        meta_edit(meta)
    if section_edit:
        sections = [section_edit(s) for s in sections]
    write_spk(dst, sections, meta, n)


def test_unknown_model_malformed_meta_and_corrupt_streams_are_refused(scene, grid, shipped, mode):
    _write(scene, grid, shipped / "a.spk")
    cases = {
        "malformed prior-grid header": lambda m: m.update(prior={**m["prior"], "model": "../x"}),
        "does not have": lambda m: m.update(prior={**m["prior"], "model": "nothing-here"}),
        "fallback": lambda m: m.update(prior={**m["prior"], "fallback": ["grid.bogus"]}),
        "grid does not fit": lambda m: m.update(grid={"height": 1, "width": 200}),
        "coding mode": lambda m: m.update(prior={**m["prior"], "mode": "pixels"}),
    }
    if mode == "bitplanes":
        cases["static plane table"] = lambda m: m.update(prior={**m["prior"], "static": {"200": 5}})
    for i, (message, edit) in enumerate(cases.items()):
        _rewrite(shipped / "a.spk", shipped / f"m{i}.spk", meta_edit=edit)
        with pytest.raises(SpkError, match=message):
            read_gaussians(shipped / f"m{i}.spk")

    def flip(s):
        if s.name != STREAM[mode]:
            return s
        b = bytearray(s.payload)
        b[len(b) // 2] ^= 0x5A
        return Section(s.name, s.codec, bytes(b))

    _rewrite(shipped / "a.spk", shipped / "flip.spk", section_edit=flip)
    with pytest.raises(SpkError):
        read_gaussians(shipped / "flip.spk")
    data = (shipped / "a.spk").read_bytes()
    (shipped / "cut.spk").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(SplatpackError):
        read_gaussians(shipped / "cut.spk")


def test_model_by_path_and_missing_model(shipped):
    assert prior_codec.model_for(str(shipped / "tiny-v1.pt")).name == "tiny-v1"
    with pytest.raises(SplatpackError, match="no coding model"):
        prior_codec.model_for("absent-v9")


def test_transcoding_to_a_grid_scene_keeps_the_gaussians(scene, grid, shipped, mode):
    _write(scene, grid, shipped / "a.spk")
    size = transcode_to_grid(shipped / "a.spk", shipped / "t.spk")
    with SpkReader(shipped / "t.spk") as r:
        assert r.meta["kind"] == "sog-grid" and "prior" not in r.meta and not r.has(STREAM[mode])
        assert r.file_size == size
    a, t = read_gaussians(shipped / "a.spk"), read_gaussians(shipped / "t.spk")
    assert all(
        torch.equal(getattr(a, f), getattr(t, f)) for f in ("means", "quats", "scales", "opacities", "sh0", "shN")
    )
    with pytest.raises(SpkError, match="not a prior-grid"):
        transcode_to_grid(shipped / "t.spk", shipped / "u.spk")
