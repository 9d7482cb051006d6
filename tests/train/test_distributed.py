"""Data-parallel training with 2 gloo processes (splatpack.train.distributed): the ranks stay
identical (the trainer compares their digests at the end and fails otherwise), the result matches
one process with the same global batch, and a paused run resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch
from distributed_runs import tiny_config, train_rank

from splatpack.apps.cli import main
from splatpack.core.distributed import Ranks, ranks_from_environment, spawn
from splatpack.core.errors import SplatpackError
from splatpack.train import Trainer

# Same global batch, float sums in another order (the all-reduce): after 40 Adam steps with three
# refinements, the same Gaussians, parameters within this, test PSNR within 0.05 dB.
PARAM_TOLERANCE = 5e-3


def checkpoint_params(out_dir) -> dict[str, torch.Tensor]:
    return torch.load(out_dir / "checkpoint.pt", weights_only=True)["params"]


@pytest.fixture(scope="module")
def two_ranks(tiny_capture, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp2")
    spawn(2, train_rank, str(tiny_capture.root), str(out), {"batch_size": 1})
    return out


def test_two_ranks_match_one_process_with_the_global_batch(two_ranks, tiny_capture, tmp_path):
    metrics = json.loads((two_ranks / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["batch_size"] == 1 and metrics["steps"] == 40
    single = Trainer(tiny_capture, tiny_config(batch_size=2), tmp_path)
    one = single.train()
    a, b = checkpoint_params(two_ranks), checkpoint_params(tmp_path)
    assert len(a["means"]) == len(b["means"]) != 1500  # the refinements changed the count alike
    for k in a:
        assert float((a[k] - b[k]).abs().max()) < PARAM_TOLERANCE, k
    assert abs(metrics["psnr"] - one["psnr"]) < 0.05


def test_two_ranks_resume_exactly(two_ranks, tiny_capture, tmp_path):
    root = str(tiny_capture.root)
    spawn(2, train_rank, root, str(tmp_path), {"batch_size": 1}, 20)
    assert not (tmp_path / "metrics.json").exists()
    spawn(2, train_rank, root, str(tmp_path), {"batch_size": 1}, None, True)
    a, b = checkpoint_params(two_ranks), checkpoint_params(tmp_path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_failing_rank_fails_the_job_with_its_error(tiny_capture, tmp_path):
    with pytest.raises(SplatpackError, match=r"a training process failed: .*batch_size"):
        spawn(2, train_rank, str(tiny_capture.root), str(tmp_path), {"batch_size": 0})


def test_ranks_come_from_torchruns_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert ranks_from_environment() == Ranks(3, 4)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(SplatpackError, match="outside"):
        ranks_from_environment()
    monkeypatch.delenv("WORLD_SIZE")
    assert not ranks_from_environment().distributed


def test_cli_refuses_nproc_inside_torchrun_and_with_the_viewer(monkeypatch, capsys):
    assert main(["train", "default", "--nproc", "2", "--viewer"]) == 2
    assert "--viewer" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "default", "--nproc", "2"]) == 2
    assert "torchrun" in capsys.readouterr().err
