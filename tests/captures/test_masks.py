"""Object masks: found beside the images (LLFF, COLMAP layout) or by nerfstudio's ``mask_path``,
read from 8-bit, 1-bit and alpha PNGs; used by training as alpha or as a loss mask."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from splatpack.captures import load_capture
from splatpack.captures.masks import find_mask, load_mask
from splatpack.captures.types import Frame
from splatpack.core.errors import CaptureError
from splatpack.train.trainer import photometric_loss
from splatpack.train.views import load_views

W, H = 16, 12


def _disc() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return ((xx - 8) ** 2 + (yy - 6) ** 2 < 16).astype(np.uint8)


def _llff(root: Path, n: int = 3, mask_dir: str | None = "masks") -> Path:
    (root / "images").mkdir(parents=True)
    rows = []
    for k in range(n):
        Image.fromarray(np.full((H, W, 3), 60 * k, np.uint8)).save(root / "images" / f"im{k}.jpg")
        pose = np.concatenate([np.eye(3), [[0.0], [0.0], [k]], [[H], [W], [20.0]]], axis=1)
        rows.append(np.concatenate([pose.ravel(), [1.0, 9.0]]))
    np.save(root / "poses_bounds.npy", np.stack(rows))
    if mask_dir:
        (root / mask_dir).mkdir()
        for k in range(n):
            Image.fromarray(_disc() * 255).save(root / mask_dir / f"im{k}.png")  # the stem with .png
    return root


def test_llff_finds_masks_and_bounds(tmp_path: Path) -> None:
    cap = load_capture(_llff(tmp_path / "cap"), test_every=0)
    for f in cap.train:
        assert f.mask_path == (tmp_path / "cap/masks" / (f.image_path.stem + ".png")).absolute()
        assert f.near_far == (1.0, 9.0)
        assert np.array_equal(load_mask(f), _disc().astype(np.float32))
    assert load_capture(_llff(tmp_path / "plain", mask_dir=None), test_every=0).train[0].mask_path is None


def test_mask_file_kinds_and_downscaled_folders(tmp_path: Path) -> None:
    (tmp_path / "images_2").mkdir()
    img = tmp_path / "images_2/a.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(img)
    frame = Frame(img, np.eye(4), np.eye(3), W, H)
    assert find_mask(img) is None
    (tmp_path / "masks").mkdir()
    one_bit = Image.fromarray(_disc().astype(bool))  # mode "1"
    assert one_bit.mode == "1"
    one_bit.save(tmp_path / "masks/a.png")
    assert find_mask(img) == (tmp_path / "masks/a.png").absolute()
    frame.mask_path = find_mask(img)
    assert np.array_equal(load_mask(frame), _disc().astype(np.float32))
    (tmp_path / "masks_2").mkdir()  # the downscaled folder's own masks win; an RGBA mask's alpha counts
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = 255 - _disc() * 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "masks_2/a.png")
    frame.mask_path = find_mask(img)
    assert frame.mask_path.parent.name == "masks_2"
    assert np.array_equal(load_mask(frame), 1 - _disc().astype(np.float32))
    # a mask of another size is resized to the frame
    Image.fromarray(np.kron(_disc(), np.ones((2, 2), np.uint8)) * 255).save(tmp_path / "masks_2/a.png")
    assert load_mask(frame).shape == (H, W)


def test_nerfstudio_mask_path(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "sel").mkdir()
    frames = []
    for k in range(2):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / f"images/f{k}.png")
        Image.fromarray(_disc() * 255).save(tmp_path / f"sel/m{k}.png")
        frames.append(
            {"file_path": f"images/f{k}.png", "mask_path": f"sel/m{k}.png", "transform_matrix": np.eye(4).tolist()}
        )
    meta = {"fl_x": 20.0, "w": W, "h": H, "frames": frames}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    cap = load_capture(tmp_path, test_every=0)
    assert [f.mask_path.name for f in cap.train] == ["m0.png", "m1.png"]
    frames[1]["mask_path"] = "sel/missing.png"
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(CaptureError, match="mask not found"):
        load_capture(tmp_path, test_every=0)


def test_mask_modes_in_the_training_views(tmp_path: Path) -> None:
    cap = load_capture(_llff(tmp_path / "cap"), test_every=0)
    bg = torch.tensor([0.0, 1.0, 0.0])
    disc = torch.from_numpy(_disc()).bool()
    alpha = load_views(cap.train, bg, "cpu", "alpha")[2]
    assert alpha.mask is None and torch.equal(alpha.alpha.bool(), disc)
    assert torch.allclose(alpha.image[~disc], bg)  # composited on the background outside the mask
    loss = load_views(cap.train, bg, "cpu", "loss")[2]
    assert loss.alpha is None and torch.equal(loss.mask.bool(), disc)
    assert torch.allclose(loss.image, torch.full((H, W, 3), 120 / 255), atol=2 / 255)  # the photo as it is
    off = load_views(cap.train, bg, "cpu", "off")[2]
    assert off.alpha is None and off.mask is None


@pytest.mark.parametrize("ssim_lambda", [0.0, 0.2])
def test_masked_loss_ignores_pixels_outside_the_mask(ssim_lambda: float) -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(40, 48, 3, generator=g)
    mask = torch.zeros(40, 48)
    mask[12:28, 14:34] = 1
    # beyond SSIM's 11-pixel window (radius 5) from the mask, a pixel cannot count at all
    far = torch.nn.functional.max_pool2d(mask[None, None], 13, stride=1, padding=6)[0, 0] == 0
    far3 = far[..., None].expand_as(target)
    render = target + 0.1 * (mask[..., None] > 0)  # wrong by 0.1 inside the mask
    loss = photometric_loss(render, target, ssim_lambda, mask)
    changed = render.clone()
    changed[far3] = torch.rand(int(far3.sum()), generator=g)  # and anything far outside it
    assert torch.isclose(photometric_loss(changed, target, ssim_lambda, mask), loss, rtol=1e-5)
    assert photometric_loss(changed, target, ssim_lambda) > 2 * photometric_loss(render, target, ssim_lambda)
    # the L1 term is the mean over the mask's pixels: 0.1, not diluted by the pixels outside
    assert torch.isclose(photometric_loss(render, target, 0.0, mask), torch.tensor(0.1), atol=1e-5)
    assert torch.isclose(photometric_loss(render, target, 0.0), 0.1 * mask.mean(), atol=1e-5)
    # no gradient reaches a pixel outside the mask through the L1 term, nor far outside through SSIM
    r = changed.clone().requires_grad_(True)
    photometric_loss(r, target, ssim_lambda, mask).backward()
    outside = (mask == 0)[..., None].expand_as(r)
    assert (r.grad[far3 if ssim_lambda else outside] == 0).all() and (r.grad[~outside] != 0).all()
