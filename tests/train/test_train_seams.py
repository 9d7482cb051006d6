"""The seams of the training loop: method hooks, the output per preset, checkpoints, evaluation
helpers and the colour field's contraction box."""

from __future__ import annotations

import pytest
import torch

from splatpack.compress.colour_field import contraction_box
from splatpack.core.errors import SplatpackError
from splatpack.train import TrainConfig, Trainer, apply_overrides
from splatpack.train.checkpoint import load_checkpoint
from splatpack.train.compact import CompactHooks
from splatpack.train.config import CompactConfig, DensifyConfig, GeometryVQ, GridTraining
from splatpack.train.evaluate import eval_mode, evaluation_views
from splatpack.train.grid import GridHooks
from splatpack.train.hooks import MethodHooks, RenderInputs
from splatpack.train.outputs import CompactOutput, FullOutput, GridOutput, Output, PlyOutput, output_for

TINY_CAPTURE = (32, 4, 1)  # size, training and test views


def tiny_config(**kw) -> TrainConfig:
    base = TrainConfig(steps=10, init_random_points=300, checkpoint_every=5, eval_lpips=False, scale_schedule=False)
    return apply_overrides(base, kw)


@pytest.mark.parametrize(
    ("compact", "grid", "kind"),
    [(False, False, PlyOutput), (True, False, CompactOutput), (False, True, GridOutput), (True, True, FullOutput)],
)
def test_each_preset_has_its_output(compact, grid, kind):
    cfg = apply_overrides(TrainConfig(), {"compact": {"enabled": compact}, "grid": {"enabled": grid}})
    assert type(output_for(cfg)) is kind
    with pytest.raises(NotImplementedError):
        Output().write(None)


def test_the_base_hooks_change_nothing():
    h = MethodHooks()
    params = {"means": torch.zeros(2, 3)}
    assert h.render_params(params, 0) is params
    inputs = RenderInputs(torch.zeros(2, 4), torch.zeros(2, 3), torch.ones(2, 3), torch.ones(2), 3)
    h.render_inputs(inputs, params, params, None, 0)
    assert inputs.colors is None and inputs.aux == [] and inputs.sh_degree == 3
    assert h.aux_loss(params) is None and h.learning_rates() == {} and h.modules() == {} and h.state_dict() == {}
    assert h.make_optimizers(True) == {}


class Recorder(MethodHooks):
    name = "recorder"

    def __init__(self):
        self.calls: list[str] = []

    def before_step(self, params, step):
        self.calls.append("before_step")

    def render_params(self, params, step):
        self.calls.append("render_params")
        return params

    def render_inputs(self, inputs, params, rendered, view, step):
        self.calls.append("render_inputs")

    def aux_loss(self, params):
        self.calls.append("aux_loss")
        return params["means"].sum() * 0

    def before_optimise(self, step):
        self.calls.append("before_optimise")

    def after_step(self, params, step, remove):
        self.calls.append("after_step")
        assert remove(torch.zeros(len(params["means"]), dtype=torch.bool)) == 0

    def state_dict(self):
        return {"calls": len(self.calls)}


def test_the_loop_calls_the_hooks_in_order(tiny_capture, tmp_path):
    t = Trainer(tiny_capture, tiny_config(), tmp_path)
    rec = Recorder()
    t.hooks.append(rec)
    t.setup()
    t.train_step()
    expected = ["before_step", "render_params", "render_inputs", "aux_loss", "before_optimise", "after_step"]
    assert rec.calls == expected


def test_grid_hooks_follow_removals_and_renumbering():
    g = GridHooks(GridTraining(enabled=True), seed=0)
    g.index = torch.tensor([[0, 1, 2], [3, 4, -1]])
    g.removed(torch.tensor([False, True, False, False, True]))
    assert g.index.tolist() == [[0, -1, 1], [2, -1, -1]]
    assert g.output_index(3).tolist() == g.index.tolist()
    g.renumbered()
    assert g.index is None and g.output_index(3) is None
    state = g.state_dict()
    g2 = GridHooks(GridTraining(enabled=True, smoothness_weight=0.0), seed=0)
    g2.load_state_dict({**state, "index": torch.arange(6).reshape(2, 3)}, "cpu")
    assert g2.output_index(6) is None  # nothing was smoothed: the codec sorts afresh


def test_grid_hooks_check_the_codec_settings_and_pick_the_qat_config():
    with pytest.raises(SplatpackError, match="unknown setting 'mean'"):
        GridHooks(GridTraining(enabled=True, codec={"mean": {"bits": 11}}), seed=0)
    qat = GridHooks(GridTraining(enabled=True, quantisation_aware=True), seed=0, qat_start=5)
    assert qat.qat_config is qat.grid_config and qat.grid_config.frames != "best"
    params = {k: torch.zeros(1) for k in ("means", "quats", "scales", "opacities", "sh0")}
    assert qat.render_params(params, 4) is params
    assert GridHooks(GridTraining(enabled=True, quantisation_aware=True), seed=0).qat_config is None


def test_compact_hooks_check_the_rvq_attributes():
    bad = CompactConfig(enabled=True, rvq=GeometryVQ(attributes=["colour"]))
    with pytest.raises(SplatpackError, match=r"compact\.rvq\.attributes: unknown \['colour'\]"):
        CompactHooks(bad, DensifyConfig(), 100, grid_enabled=True)
    shn_only = CompactConfig(enabled=True, rvq=GeometryVQ(attributes=["shN"]))
    with pytest.raises(SplatpackError, match="must hold scales and quats"):
        CompactHooks(shn_only, DensifyConfig(), 100, grid_enabled=False)
    hooks = CompactHooks(shn_only, DensifyConfig(), 100, grid_enabled=True)
    assert hooks.vq_start == 100 - shn_only.rvq.steps and not hooks.in_vq_phase(hooks.vq_start - 1)


def test_checkpoints_hold_only_plain_data(tiny_capture, tmp_path):
    """Checkpoints are read with ``weights_only=True``: one holding a pickled object is refused."""
    assert Trainer(tiny_capture, tiny_config(), tmp_path).train(stop_at=5) is None
    t = Trainer(tiny_capture, tiny_config(), tmp_path)
    t.setup()
    assert load_checkpoint(t, t.checkpoint_path) and t.step == 5
    assert not load_checkpoint(t, tmp_path / "none.pt")
    state = torch.load(t.checkpoint_path, weights_only=True)
    torch.save({**state, "order": Recorder()}, t.checkpoint_path)
    with pytest.raises(SplatpackError, match="cannot resume from checkpoint"):
        load_checkpoint(t, t.checkpoint_path)


def test_evaluation_views_and_eval_mode():
    assert evaluation_views(list(range(16)), [1, 2]) == ([1, 2], "test")
    assert evaluation_views(list(range(16)), []) == ([0, 2, 4, 6, 8, 10, 12, 14], "train-subset")
    m = torch.nn.Linear(1, 1)
    with pytest.raises(RuntimeError), eval_mode([m]):
        assert not m.training
        raise RuntimeError
    assert m.training


def test_contraction_box_holds_the_content_not_the_outliers():
    g = torch.Generator().manual_seed(0)
    means = torch.rand(1000, 3, generator=g) * 2 - 1
    means[0] = torch.tensor([100.0, -100.0, 50.0])  # an outlier
    lo, hi = contraction_box(means)
    assert bool((lo > -1.3).all() and (hi < 1.3).all() and (lo < -1).all() and (hi > 1).all())
    q = torch.quantile(means, torch.tensor([0.01, 0.99]), dim=0)
    assert torch.allclose(hi - lo, (q[1] - q[0]) * 1.2)
