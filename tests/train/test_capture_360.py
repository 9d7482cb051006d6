"""A 360° object capture without SfM points (LLFF poses + masks, splatpack.captures.synthetic_360):
training from the cameras' common view beats 3DGS's random box on the worst test view, and the
capture reads back as written (poses, bounds, masks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from splatpack.captures import load_capture
from splatpack.captures.synthetic import render_view
from splatpack.captures.synthetic_360 import make_object_capture
from splatpack.metrics import psnr
from splatpack.train import TrainConfig, Trainer, apply_overrides


@pytest.fixture(scope="module")
def capture_360(tmp_path_factory):
    return load_capture(make_object_capture(tmp_path_factory.mktemp("c360") / "cap", n=24, size=40))


def test_capture_reads_back_with_poses_bounds_and_masks(capture_360):
    cap = capture_360
    assert cap.format == "llff" and cap.points is None and (len(cap.train), len(cap.test)) == (21, 3)
    for f in cap.frames:
        assert f.mask_path is not None and f.mask_path.parent.name == "masks"
        near, far = f.near_far
        assert 2.5 < near < far < 5.5
        # the reader's OpenCV pose renders the mask that was written
        coverage = render_view(f.camtoworld @ np.diag([1.0, -1.0, -1.0, 1.0]), f.width, f.height)[..., 3]
        assert np.array_equal(coverage, np.asarray(Image.open(f.mask_path)))


def _worst_test_psnr(capture, init_mode: str, tmp_path) -> float:
    cfg = apply_overrides(
        TrainConfig(),
        {
            "steps": 150,
            "init_mode": init_mode,
            "init_random_points": 3000,
            "sh_degree": 1,
            "eval_lpips": False,
            "checkpoint_every": 0,
            "log_every": 100,
            "threads": 1,  # two shared cores: more threads only contend
        },
    )
    trainer = Trainer(capture, cfg, tmp_path / init_mode)
    trainer.train(stop_at=cfg.steps)  # trains, no evaluation or outputs
    with torch.no_grad():
        return min(psnr(trainer.render(v, sh_degree=1)[0].clamp(0, 1), v.image) for v in trainer.test_views)


def test_frustum_init_beats_the_box_on_the_worst_test_view(capture_360, tmp_path):
    box = _worst_test_psnr(capture_360, "box", tmp_path)
    frustum = _worst_test_psnr(capture_360, "frustum", tmp_path)
    print(f"worst test view: frustum {frustum:.2f} dB, box {box:.2f} dB")
    assert frustum > box + 3.0, (frustum, box)
