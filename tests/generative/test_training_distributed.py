"""Data-parallel training of the generative model (:mod:`splatpack.generative.training` over
:mod:`splatpack.core.distributed`, 2 gloo processes): both ranks end with the same weights, the
loss curve matches one process with the same global batch, a paused job resumes exactly, and the
CLI's ``prior train --nproc`` writes one model and refuses what cannot split."""

from __future__ import annotations

import json

import pytest
import torch
from distributed_runs import train_generative_rank
from format_scenes import random_set
from generative_objects import tiny_objects, tiny_training
from prior_models import one_torch_thread

from splatpack.apps import cli
from splatpack.core.distributed import spawn
from splatpack.formats import save_scene
from splatpack.generative.model import GenerativeModel
from splatpack.generative.training import train_model

STEPS = 40


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("prior_dp2")
    spawn(2, train_generative_rank, str(out), STEPS, 4)
    return out


def test_both_ranks_end_with_the_same_weights(two_ranks):
    a, b = torch.load(two_ranks / "rank0.pt"), torch.load(two_ranks / "rank1.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loss_curve_matches_one_process_with_the_global_batch(two_ranks):
    two = json.loads((two_ranks / "losses.json").read_text())
    one: dict[str, list[float]] = {"bae": [], "prior": [], "coder": []}
    with one_torch_thread():
        train_model(tiny_objects(), tiny_training(STEPS, 4), on_step=lambda s, i, n, loss: one[s].append(loss))
    for stage in ("bae", "prior", "coder"):
        assert len(two[stage]) == len(one[stage]) == STEPS
        # same batches, other Bernoulli/diffusion noise: the curves agree where they settle
        late_two, late_one = sum(two[stage][-20:]) / 20, sum(one[stage][-20:]) / 20
        assert abs(late_two - late_one) < 0.15 * late_one, (stage, late_two, late_one)
        assert late_two < 0.92 * sum(two[stage][:10]) / 10  # and both learn


def test_a_paused_job_resumes_to_the_same_weights(two_ranks, tmp_path):
    spawn(2, train_generative_rank, str(tmp_path), STEPS, 4, 6)  # stops just past the checkpoint at prior step 5
    assert not (tmp_path / "rank0.pt").exists()
    spawn(2, train_generative_rank, str(tmp_path), STEPS, 4, None, True)
    a, b = torch.load(two_ranks / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_refuses_a_batch_that_does_not_split_and_nproc_inside_torchrun(tmp_path, monkeypatch, capsys):
    argv = ["prior", "train", str(tmp_path), "--out", str(tmp_path / "m.pt")]
    assert cli.main([*argv, "--nproc", "3"]) == 2  # the default batch of 8
    assert "--batch 8 does not split over --nproc 3" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert cli.main([*argv, "--nproc", "2"]) == 2
    assert "torchrun" in capsys.readouterr().err


def test_prior_train_nproc_2_writes_one_model_with_its_card(tmp_path, capsys):
    data = tmp_path / "objects"
    data.mkdir()
    for i, name in enumerate(["apple", "bell", "cone"]):
        save_scene(random_set(200, seed=i), data / f"{name}.splat")
    out = tmp_path / "m.pt"
    argv = ["prior", "train", str(data), "--out", str(out), "--steps", "2", "--augmentations", "1"]
    assert cli.main([*argv, "--held-out", "1", "--grid", "16x8", "--batch", "2", "--nproc", "2"]) == 0
    model = GenerativeModel.load(out)
    assert "--nproc 2" in model.info["command"] and model.info["device"].endswith("2 processes")
    assert "2 processes" in out.with_suffix(".md").read_text()
    assert not out.with_name("m.checkpoint.pt").exists()
