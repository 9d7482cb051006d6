"""Checkpoints (:mod:`splatpack.train.checkpoint`): read without unpickling code, and refused when
their bytes changed (their SHA-256 is stored beside them)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from splatpack.core.errors import SplatpackError
from splatpack.train import TrainConfig, Trainer
from splatpack.train.checkpoint import load_checkpoint, state_digest

TINY_CAPTURE = (32, 4, 1)  # size, training and test views


def tiny_config() -> TrainConfig:
    return TrainConfig(steps=10, init_random_points=300, checkpoint_every=5, eval_lpips=False, scale_schedule=False)


@pytest.fixture(scope="module")
def saved(tiny_capture, tmp_path_factory):
    """A run paused at step 5: its checkpoint file."""
    out = tmp_path_factory.mktemp("run")
    assert Trainer(tiny_capture, tiny_config(), out).train(stop_at=5) is None
    return out / "checkpoint.pt"


@pytest.fixture
def trainer(tiny_capture, saved, tmp_path):
    """A set-up trainer in ``tmp_path`` with a copy of the saved checkpoint."""
    shutil.copy(saved, tmp_path / "checkpoint.pt")
    t = Trainer(tiny_capture, tiny_config(), tmp_path)
    t.setup()
    return t


class Payload:
    """Pickles as a call of ``os.mkdir(marker)``: what a crafted checkpoint would run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def flip_bit(path, tensor: torch.Tensor, byte: int = 1) -> None:
    """Flip the lowest bit of byte ``byte`` of ``tensor``'s data where it lies in the file at ``path``."""
    data = bytearray(path.read_bytes())
    at = data.find(tensor.contiguous().numpy().tobytes())
    assert at > 0 and data.find(tensor.contiguous().numpy().tobytes(), at + 1) < 0
    data[at + byte] ^= 1
    path.write_bytes(bytes(data))


def test_the_checksum_covers_the_state(trainer):
    state = torch.load(trainer.checkpoint_path, weights_only=True)
    stored = state.pop("sha256")
    assert stored == state_digest(state) and len(stored) == 64
    assert load_checkpoint(trainer, trainer.checkpoint_path) and trainer.step == 5


def test_a_pickled_payload_is_refused_without_running(trainer, tmp_path):
    marker = tmp_path / "payload_ran"
    state = torch.load(trainer.checkpoint_path, weights_only=True)
    torch.save({**state, "order": Payload(str(marker))}, trainer.checkpoint_path)
    with pytest.raises(SplatpackError, match="cannot resume from checkpoint: UnpicklingError"):
        load_checkpoint(trainer, trainer.checkpoint_path)
    assert not marker.exists()
    torch.load(trainer.checkpoint_path, weights_only=False)  # the payload is real: unrestricted, it runs
    assert marker.is_dir()


@pytest.mark.parametrize("where", ["params", "optimizer"])
def test_a_flipped_bit_is_refused(trainer, where):
    """A flip of the lowest bit of one float (still finite, a tiny change) in the parameters or
    in an optimiser's moments is refused before anything is restored."""
    state = torch.load(trainer.checkpoint_path, weights_only=True)
    if where == "params":
        tensor = state["params"]["means"]
    else:
        tensor = next(iter(state["optimizers"]["means"]["state"].values()))["exp_avg"]
    flip_bit(trainer.checkpoint_path, tensor)
    before = {k: v.detach().clone() for k, v in trainer.params.items()}
    with pytest.raises(SplatpackError, match="contents do not match their SHA-256") as e:
        load_checkpoint(trainer, trainer.checkpoint_path)
    assert "\n" not in str(e.value) and trainer.step == 0
    assert all(torch.equal(before[k], trainer.params[k]) for k in before)
    with pytest.raises(SplatpackError, match="do not match"):
        trainer.train(resume=True)


def test_a_checkpoint_without_checksum_is_refused(trainer):
    state = torch.load(trainer.checkpoint_path, weights_only=True)
    del state["sha256"]
    torch.save(state, trainer.checkpoint_path)
    with pytest.raises(SplatpackError, match="holds no checksum"):
        load_checkpoint(trainer, trainer.checkpoint_path)
    torch.save([1, 2, 3], trainer.checkpoint_path)
    with pytest.raises(SplatpackError, match="holds no checksum"):
        load_checkpoint(trainer, trainer.checkpoint_path)
