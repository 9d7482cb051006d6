"""The live view of a training run (``splatpack train --viewer``): a viser server on a loopback
address showing the current Gaussians as splats and the training cameras as frustums.

Training must not wait for the viewer, so the work is split in two:

* :meth:`LiveTrainingView.update`, on the training thread, only copies the tensors the view
  needs (means, quaternions, log scales, opacity logits, SH DC, and the Compact-3DGS mask when
  there is one) to the CPU and hands them over: a copy of ~60 bytes per Gaussian.
* a worker thread turns the newest copy into viser's arrays (covariances R S Sᵀ Rᵀ, colours
  0.5 + C₀·DC, opacities σ(o), masked Gaussians hidden) and replaces the splats in the scene;
  viser's own event loop sends them to the browsers. A copy that arrives while the worker is
  busy replaces the pending one, so updates never queue up.

The trainer calls :meth:`~LiveTrainingView.update` through a
:class:`~splatpack.train.trainer.StepCallback` every ``--viewer-every`` steps and after the
last one.

Scenes trained with a colour field instead of SH (Compact-3DGS) have no per-Gaussian colour to
show without the field; their Gaussians are drawn in a neutral grey.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from splatpack.captures.types import Frame
from splatpack.core.errors import SplatpackError
from splatpack.core.sh import sh_to_rgb
from splatpack.render.projection import covariance_3d
from splatpack.view.framing import Framing, frame_cameras, frame_points
from splatpack.view.request import check_port, http_url, is_loopback_host

log = logging.getLogger(__name__)

VISER_HINT = "pip install 'viser>=1.1.1'"
SNAPSHOT_KEYS = ("means", "quats", "scales", "opacities", "sh0", "mask")
GREY = 0.7


@dataclass
class LiveViewConfig:
    host: str = "127.0.0.1"  # loopback only
    port: int = 8080  # viser moves to the next free port when it is taken; 0 = any free port
    frustum_scale: float = 0.05  # frustum size, as a fraction of the camera rig's radius
    mask_threshold: float = 0.01  # Compact-3DGS's ε: σ(mask) ≤ ε is hidden (its pruning threshold)


def import_viser():
    try:
        import viser
    except ModuleNotFoundError:
        raise SplatpackError(f"the live training view needs viser, which is not installed ({VISER_HINT})") from None
    return viser


def snapshot(gaussians: Any) -> dict[str, torch.Tensor]:
    """CPU float32 copies of the tensors the view shows, from a :class:`~splatpack.core.GaussianSet`
    or the trainer's ``ParameterDict`` (any mapping with gsplat's keys)."""
    is_mapping = isinstance(gaussians, (Mapping, torch.nn.ParameterDict))
    out = {}
    with torch.no_grad():
        for k in SNAPSHOT_KEYS:
            t = gaussians.get(k) if is_mapping else getattr(gaussians, k, None)
            if t is not None:
                out[k] = t.detach().to("cpu", torch.float32, copy=True)
    missing = {"means", "quats", "scales", "opacities"} - out.keys()
    if missing:
        raise ValueError(f"the Gaussians lack {', '.join(sorted(missing))}")
    return out


def splat_arrays(snap: Mapping[str, torch.Tensor], mask_threshold: float = 0.01) -> dict[str, np.ndarray]:
    """viser's ``add_gaussian_splats`` arrays: centers [N,3], covariances [N,3,3], rgbs [N,3]
    in 0..1 and opacities [N,1]."""
    means = snap["means"]
    n = len(means)
    with torch.no_grad():
        cov = covariance_3d(snap["quats"], torch.exp(snap["scales"]))
        if "sh0" in snap and snap["sh0"].numel():
            rgb = sh_to_rgb(snap["sh0"].reshape(n, 3)).clamp(0, 1)
        else:
            rgb = torch.full((n, 3), GREY)
        alpha = torch.sigmoid(snap["opacities"].reshape(n))
        if "mask" in snap:
            alpha = alpha * (torch.sigmoid(snap["mask"].reshape(n)) > mask_threshold)
    return {
        "centers": means.numpy(),
        "covariances": cov.numpy(),
        "rgbs": rgb.numpy(),
        "opacities": alpha.reshape(n, 1).numpy(),
    }


class LiveTrainingView:
    """A viser server showing a training run; :meth:`update` with the current Gaussians.

    ``cameras`` are drawn once as frustums (OpenCV camera-to-world poses, as in
    :class:`~splatpack.captures.types.Frame`); the scene's up direction and the initial view
    are :func:`~splatpack.view.framing.frame_cameras` of them (without cameras, the framing of
    the first Gaussians shown, :func:`~splatpack.view.framing.frame_points`).
    """

    def __init__(self, cameras: Sequence[Frame] = (), cfg: LiveViewConfig | None = None):
        self.cfg = cfg = cfg or LiveViewConfig()
        if not is_loopback_host(cfg.host):
            raise SplatpackError(f"refusing to serve the live view on {cfg.host!r}: loopback addresses only")
        check_port(cfg.port)
        viser = import_viser()
        with contextlib.redirect_stdout(io.StringIO()):  # viser prints a banner on stdout; train prints the URL
            self.server = viser.ViserServer(host=cfg.host, port=cfg.port, label="splatpack training", verbose=False)
        self.splats = None  # the GaussianSplatHandle, after the first update
        self.num_gaussians = 0
        self.step = -1  # the step of the Gaussians on screen
        self.snapshot_seconds = 0.0  # the last update's cost on the training thread
        self.apply_seconds = 0.0  # the last update's cost on the worker thread
        self.error: BaseException | None = None
        self._status = self.server.gui.add_markdown("waiting for the first Gaussians…")
        self.framing: Framing | None = None  # the initial view, once known
        self._add_cameras(list(cameras))
        self._cond = threading.Condition()
        self._pending: tuple[int, dict[str, torch.Tensor]] | None = None
        self._busy = False
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="splatpack-live-view", daemon=True)
        self._worker.start()

    # ---- address ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.server.get_port()

    @property
    def url(self) -> str:
        return http_url(self.server.get_host(), self.port)

    # ---- updates ---------------------------------------------------------------------------------
    def update(self, gaussians: Any, step: int, wait: bool = False) -> None:
        """Show ``gaussians`` (a GaussianSet or the trainer's parameters) as of ``step``. Returns
        after a CPU copy; the scene is updated on the worker thread (``wait=True``: before returning)."""
        t0 = time.perf_counter()
        snap = snapshot(gaussians)
        with self._cond:
            if self._closed:
                return
            self._pending = (step, snap)
            self._cond.notify_all()
        self.snapshot_seconds = time.perf_counter() - t0
        if wait:
            self.flush()

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until the newest update is in the scene; re-raises the worker's error if it failed."""
        with self._cond:
            if not self._cond.wait_for(lambda: (self._pending is None and not self._busy) or self._closed, timeout):
                raise TimeoutError(f"the live view did not apply the update within {timeout:.0f} s")
            if self.error is not None:
                raise self.error

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                step, snap = self._pending
                self._pending, self._busy = None, True
            try:
                self._apply(step, snap)
            except Exception as e:  # the viewer must never stop training
                log.warning("live view update at step %d failed: %s", step, e)
                self.error = e
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _apply(self, step: int, snap: dict[str, torch.Tensor]) -> None:
        t0 = time.perf_counter()
        arrays = splat_arrays(snap, self.cfg.mask_threshold)
        if self.splats is None:
            self.splats = self.server.scene.add_gaussian_splats("/gaussians", **arrays)
            if self.framing is None:  # no cameras: frame the first Gaussians
                self._set_initial_camera(frame_points(arrays["centers"], arrays["opacities"]))
        else:
            self.splats.set_gaussians(**arrays)
        self.step, self.num_gaussians = step, len(arrays["centers"])
        self._status.content = f"**step {step:,}** · {self.num_gaussians:,} Gaussians"
        self.apply_seconds = time.perf_counter() - t0

    # ---- cameras -----------------------------------------------------------------------------------
    def _add_cameras(self, frames: list[Frame]) -> None:
        if not frames:
            return
        import viser.transforms as vtf

        c2w = np.stack([f.camtoworld for f in frames]).astype(np.float64)
        centres = c2w[:, :3, 3]
        radius = float(np.linalg.norm(centres - centres.mean(0), axis=1).max()) or 1.0
        for i, (f, m) in enumerate(zip(frames, c2w)):
            self.server.scene.add_camera_frustum(
                f"/cameras/{i:04d}",
                fov=2 * math.atan2(f.height / 2, f.K[1, 1]),
                aspect=f.width / f.height,
                scale=self.cfg.frustum_scale * radius,
                wxyz=vtf.SO3.from_matrix(m[:3, :3]).wxyz,
                position=m[:3, 3],
                color=(255, 140, 0),
            )
        self._set_initial_camera(
            frame_cameras(c2w, np.stack([f.K for f in frames]), np.array([f.height for f in frames], np.float64))
        )

    def _set_initial_camera(self, framing: Framing) -> None:
        """Start a browser opening the page (and viser's "Reset View") at ``framing``, with its up
        as the scene's up direction."""
        self.framing = framing
        self.server.scene.set_up_direction(framing.up)
        cam = self.server.initial_camera
        cam.up = framing.up
        cam.look_at = framing.centre
        cam.position = framing.eye
        cam.fov = math.radians(framing.fov_degrees)

    # ---- life cycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the worker (dropping a pending update) and the server."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout=10)
        with contextlib.redirect_stdout(io.StringIO()):  # viser prints "Server stopped" on stdout
            self.server.stop()

    def __enter__(self) -> LiveTrainingView:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
