"""Generative model files and training (:mod:`splatpack.generative.model`,
:mod:`splatpack.generative.training`): a save/load round trip, float16 storage, one-line refusals
of corrupted, foreign and newer files, seeded generation, training that lowers both losses, and
a resumed run that ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import pytest
import torch
from generative_objects import tiny_model_config, tiny_objects, tiny_training
from prior_models import one_torch_thread

from splatpack.core import SplatpackError
from splatpack.core.digest import state_digest
from splatpack.generative.diffusion import DenoiserConfig
from splatpack.generative.grids import ChannelStats
from splatpack.generative.model import GenerativeModel, ModelConfig
from splatpack.generative.training import make_grids, train_model


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _model(seed: int = 0) -> GenerativeModel:
    torch.manual_seed(seed)
    stats = ChannelStats(torch.randn(14), torch.rand(14) + 0.5)
    return GenerativeModel.create(tiny_model_config(), stats, {"objects": ["a", "b"]}).eval()


def test_config_fills_shapes_from_the_layout():
    c = tiny_model_config()
    assert c.bae.channels == 14 and (c.prior.bits, c.prior.height, c.prior.width) == (16, 4, 4)
    with pytest.raises(ValueError, match="do not match"):
        ModelConfig(c.layout, c.bae, DenoiserConfig(bits=16, height=8, width=8), c.schedule).validate()


def test_save_load_round_trip(tmp_path):
    model = _model()
    digest = model.save(tmp_path / "m.pt")
    back = GenerativeModel.load(tmp_path / "m.pt")
    assert back.content_hash == digest == model.content_hash and len(digest) == 64
    assert back.config == model.config and back.info == {"objects": ["a", "b"]}
    for k, v in model.tensors().items():
        torch.testing.assert_close(back.tensors()[k], v, rtol=0, atol=0)
    a = model.generate(2, steps=3, seed=5)
    b = back.generate(2, steps=3, seed=5)
    assert len(a) == 2 and len(a[0]) == 64
    torch.testing.assert_close(a[1].means, b[1].means)


def test_half_storage_is_smaller_and_loads_as_float(tmp_path):
    model = _model()
    model.save(tmp_path / "full.pt")
    model.save(tmp_path / "half.pt", half=True)
    assert (tmp_path / "half.pt").stat().st_size < 0.75 * (tmp_path / "full.pt").stat().st_size
    back = GenerativeModel.load(tmp_path / "half.pt")
    w = back.tensors()["bae.encoder.0.weight"]
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, model.tensors()["bae.encoder.0.weight"], atol=1e-3, rtol=1e-3)


def test_a_changed_tensor_is_refused_in_one_line(tmp_path):
    path = tmp_path / "m.pt"
    _model().save(path)
    state = torch.load(path, weights_only=True)
    state["tensors"]["prior.head.bias"][0] += 1
    torch.save(state, path)
    with pytest.raises(SplatpackError, match=r"do not match their SHA-256") as e:
        GenerativeModel.load(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_foreign_missing_and_newer_files_are_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(SplatpackError, match="not a splatpack generative model"):
        GenerativeModel.load(tmp_path / "junk.pt")
    with pytest.raises(SplatpackError, match="does not exist"):
        GenerativeModel.load(tmp_path / "none.pt")
    state = _model().state()
    state["version"] = 99
    state["sha256"] = state_digest(state)
    torch.save(state, tmp_path / "new.pt")
    with pytest.raises(SplatpackError, match="version 99 is newer"):
        GenerativeModel.load(tmp_path / "new.pt")


def test_generation_is_seeded_and_decodes_unit_quaternions():
    model = _model()
    a, b, c = model.generate(1, 4, seed=1)[0], model.generate(1, 4, seed=1)[0], model.generate(1, 4, seed=2)[0]
    assert torch.equal(a.means, b.means) and not torch.equal(a.means, c.means)
    torch.testing.assert_close(a.quats.norm(dim=1), torch.ones(64))


def test_training_lowers_every_stages_loss():
    losses: dict[str, list[float]] = {"bae": [], "prior": [], "coder": []}
    train_model(tiny_objects(), tiny_training(40), on_step=lambda stage, step, steps, loss: losses[stage].append(loss))
    assert len(losses["bae"]) == len(losses["prior"]) == len(losses["coder"]) == 40
    # the prior's loss has a floor (late steps are coin flips); the coder's starts near 1 bit a bit
    for stage, ratio in (("bae", 0.85), ("prior", 0.92), ("coder", 0.9)):
        assert sum(losses[stage][-10:]) < ratio * sum(losses[stage][:10])


def test_grids_are_seeded_per_object_and_augmentation():
    cfg = tiny_training(1)
    a, b = make_grids(tiny_objects(), cfg), make_grids(tiny_objects(), cfg)
    assert a.shape == (4, 14, 8, 8) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_resume_ends_with_the_same_weights(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    full = train_model(tiny_objects(), tiny_training(12))

    class Stop(Exception):
        pass

    def stop_at(stage, step, steps, loss):
        if stage == "prior" and step == 6:  # just after the checkpoint at step 5
            raise Stop

    with pytest.raises(Stop):
        train_model(tiny_objects(), tiny_training(12), checkpoint=ckpt, on_step=stop_at)
    resumed = train_model(tiny_objects(), tiny_training(12), checkpoint=ckpt, resume=True)
    for k, v in full.tensors().items():
        torch.testing.assert_close(resumed.tensors()[k], v, rtol=0, atol=0)
    with pytest.raises(SplatpackError, match="other settings"):
        train_model(tiny_objects(), tiny_training(13), checkpoint=ckpt, resume=True)
