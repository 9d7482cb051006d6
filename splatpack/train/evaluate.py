"""Test-view metrics of a trained (or decoded) scene: PSNR, SSIM, LPIPS, and the test renders."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatpack.core.images import save_png
from splatpack.metrics import LPIPS, LPIPSUnavailable, psnr, ssim
from splatpack.train.views import View

__all__ = ["eval_mode", "evaluate_views", "evaluation_views", "lpips_model"]

RENDERS_DIR = "test_renders"


def evaluation_views(train_views: list[View], test_views: list[View]) -> tuple[list[View], str]:
    """The test views, or every ⌊n/8⌋-th training view when the capture has none; and which."""
    if test_views:
        return test_views, "test"
    return train_views[:: max(1, len(train_views) // 8)], "train-subset"


def lpips_model(device: str, console) -> LPIPS | None:
    """LPIPS on ``device``, or None with a warning on ``console`` when its weights are missing."""
    try:
        return LPIPS().to(device)
    except LPIPSUnavailable as e:
        console.print(f"[yellow]warning: LPIPS skipped: {e}")
        return None


@contextmanager
def eval_mode(modules: Iterable[torch.nn.Module]) -> Iterator[None]:
    """The modules in eval mode (no EMA codebook updates while evaluating), then back to training."""
    modules = list(modules)
    for mod in modules:
        mod.eval()
    try:
        yield
    finally:
        for mod in modules:
            mod.train()


@torch.no_grad()
def evaluate_views(
    views: list[View],
    split: str,
    render_fn: Callable[[View], torch.Tensor],
    lpips: LPIPS | None = None,
    renders_dir: Path | None = None,
) -> dict[str, Any]:
    """Mean PSNR, SSIM and LPIPS (None without a model) of ``render_fn(view)`` [H, W, 3], clamped
    to [0, 1], against each view's image; the renders go to ``renders_dir`` as PNGs when given."""
    ps, ss, ls = [], [], []
    for i, v in enumerate(views):
        img = render_fn(v).clamp(0, 1)
        ps.append(psnr(img, v.image))
        ss.append(float(ssim(img, v.image)))
        if lpips is not None:
            ls.append(float(lpips(img.permute(2, 0, 1)[None], v.image.permute(2, 0, 1)[None])[0]))
        if renders_dir is not None:
            save_png(renders_dir / f"{i:04d}_{Path(v.frame.name).stem}.png", img)
    return {
        "psnr": float(np.mean(ps)),
        "ssim": float(np.mean(ss)),
        "lpips": float(np.mean(ls)) if ls else None,
        "num_test_views": len(views),
        "eval_split": split,
    }
