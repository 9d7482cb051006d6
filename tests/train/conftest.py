"""The tiny synthetic capture the training tests train on (48×48 pixels, 10 training and 3 test
views, unless the test module sets ``TINY_CAPTURE = (size, n_train, n_test)``), and a run
trained straight through next to one paused and resumed."""

from __future__ import annotations

import pytest

from splatpack.captures import load_capture
from splatpack.captures.synthetic import make_synthetic_scene
from splatpack.train import TrainConfig, Trainer


@pytest.fixture(scope="module")
def tiny_capture(tmp_path_factory, request):
    size, n_train, n_test = getattr(request.module, "TINY_CAPTURE", (48, 10, 3))
    root = make_synthetic_scene(
        tmp_path_factory.mktemp("syn") / "scene", width=size, height=size, n_train=n_train, n_test=n_test
    )
    return load_capture(root)


@pytest.fixture
def straight_and_resumed(tiny_capture, tmp_path):
    """``run(cfg, stop_at)``: two trainers of ``cfg`` on the tiny capture, one trained straight
    through (in ``tmp_path/a``), one paused at ``stop_at`` and resumed from its checkpoint (in
    ``tmp_path/b``)."""

    def run(cfg: TrainConfig, stop_at: int) -> tuple[Trainer, Trainer]:
        straight = Trainer(tiny_capture, cfg, tmp_path / "a")
        straight.train()
        paused = Trainer(tiny_capture, cfg, tmp_path / "b")
        assert paused.train(stop_at=stop_at) is None
        resumed = Trainer(tiny_capture, cfg, tmp_path / "b")
        resumed.train(resume=True)
        return straight, resumed

    return run
