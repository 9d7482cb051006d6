"""Desktop viewer: Gaussian splats rasterised with OpenGL 3.3 in a native window.

Why OpenGL rather than the CPU renderer: a splat is a quad, so the fixed-function blender does
the compositing, and Mesa's llvmpipe runs the same shaders on machines without a GPU (and
without an X server for offscreen rendering, through EGL). The port follows splatpack's CPU
renderer step for step, so the two agree up to float rounding:

* per Gaussian (``shaders/project.vert.glsl``): EWA projection with the Jacobian's frustum
  clamp, the 0.3 px low-pass, the opacity-aware extent √(2 ln 255·o), near-plane culling at
  z = 0.01, SH colour up to degree 3 from the view direction —
  :mod:`splatpack.render.cpu_projection`, :mod:`splatpack.core.sh`;
* per pixel (``shaders/splat.frag.glsl``): the compositor's Mahalanobis test,
  α = min(0.999, o·e^{−σ}) (gsplat's clamp, as :mod:`splatpack.render.cpu_kernels`), α < 1/255
  skipped;
* order: Gaussians sorted by camera depth (numpy, stable, once per camera pose) and blended
  back to front, premultiplied, over the background, into a float framebuffer — the
  C = Σ cᵢαᵢTᵢ + T·bg of the front-to-back compositor. (That kernel also stops a pixel before
  the Gaussian that would bring T to ≤ 10⁻⁴; blending cannot, so such rare pixels keep what
  lies behind, at most T times its colour.)

Cameras follow the CPU renderer: OpenCV camera-to-world (x right, y down, z forward) and
intrinsics K in pixels, pixel (i, j) centred at (i + ½, j + ½).

Data flow per frame: per-Gaussian data lives in two float textures uploaded once (mean,
opacity and 3D covariance; SH coefficients). A new pose uploads only the sorted, culled index
list (one uint32 per Gaussian); a transform-feedback pass runs the projection once per Gaussian
in that order, and an instanced draw reads its records as per-instance attributes of a
4-vertex quad (the ellipse's bounding rectangle along its axes). Running the projection per
quad corner instead costs 4× the vertex work, which llvmpipe does on a single thread.

Entry points: :func:`render_offscreen` (one image, a standalone context),
:class:`SplatRenderer` (many images from one context), :class:`DesktopViewer` /
:func:`run_desktop_viewer` (a glfw window with orbit / pan / zoom / WASD controls, rendering at
reduced resolution while the camera moves).
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from splatpack.core.errors import SplatpackError

if TYPE_CHECKING:
    import moderngl

    from splatpack.core import GaussianSet

SHADER_DIR = Path(__file__).with_name("shaders")
GL_VERSION = 330
NEAR_PLANE = 0.01  # the CPU renderer's near plane
EPS2D = 0.3  # low-pass filter added to the 2D covariance (pixels²)
ALPHA_MIN = 1.0 / 255.0
TEXTURE_WIDTH = 4096  # texels per row of the data textures
RECORD_BYTES = 48  # one projected Gaussian: three vec4 (project.vert.glsl's outputs)


def _import_moderngl():
    try:
        import moderngl
    except ImportError as e:
        raise SplatpackError("the desktop viewer needs the 'moderngl' package (pip install moderngl glfw)") from e
    return moderngl


# ---------------------------------------------------------------------------------------------
# scene data and rendering
# ---------------------------------------------------------------------------------------------


@dataclass
class SplatData:
    """Gaussians as the shaders read them: float32 arrays, opacity already through the sigmoid,
    Gaussians with opacity < 1/255 dropped (the CPU renderer never draws them)."""

    means: np.ndarray  # [N, 3]
    opacities: np.ndarray  # [N]
    covariances: np.ndarray  # [N, 6]: Σxx, Σxy, Σxz, Σyy, Σyz, Σzz
    sh: np.ndarray  # [N, K, 3]
    sh_degree: int

    @classmethod
    def from_gaussians(cls, gs: GaussianSet) -> "SplatData":
        import torch

        from splatpack.render.projection import covariance_3d

        with torch.no_grad():
            alphas = gs.alphas.detach().cpu().double()
            keep = alphas >= ALPHA_MIN
            cov = covariance_3d(gs.quats[keep].detach().cpu().double(), gs.linear_scales[keep].detach().cpu().double())
            iu = ([0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2])
            return cls(
                means=gs.means[keep].detach().cpu().numpy().astype(np.float32),
                opacities=alphas[keep].numpy().astype(np.float32),
                covariances=cov[:, iu[0], iu[1]].numpy().astype(np.float32),
                sh=gs.sh[keep].detach().cpu().numpy().astype(np.float32),
                sh_degree=gs.sh_degree,
            )

    def __len__(self) -> int:
        return self.means.shape[0]


def _texture_rows(texels: np.ndarray, width: int) -> np.ndarray:
    """Texels [M, 4] laid out row-major in a [H, width, 4] array (zero padded)."""
    h = max(1, -(-texels.shape[0] // width))
    out = np.zeros((h * width, 4), np.float32)
    out[: texels.shape[0]] = texels
    return out.reshape(h, width, 4)


def visible_back_to_front(data: SplatData, viewmat: np.ndarray, K: np.ndarray, width: int, height: int) -> np.ndarray:
    """Indices (uint32) of the Gaussians that can touch the image, farthest first.

    Order: the exact reverse of the CPU compositor's stable front-to-back sort on camera depth.
    Culling: behind the near plane, or off-screen by a conservative pixel radius
    ext·√(‖J‖²_F·tr Σ + 0.3) + 1 ≥ the CPU renderer's ⌈ext·√Σ'_ii⌉ (tr Σ ≥ λ_max(Σ), the
    Frobenius norm of the unclamped Jacobian ≥ the clamped one's spectral norm). On llvmpipe
    every drawn instance costs setup time even when clipped, so this pays off when zoomed in.
    """
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    p = data.means @ viewmat[:3, :3].T.astype(np.float32) + viewmat[:3, 3].astype(np.float32)
    z = p[:, 2]
    front = z > NEAR_PLANE
    zs = np.where(front, z, np.float32(1.0))
    ux, uy = p[:, 0] / zs, p[:, 1] / zs
    jacobian_sq = (fx * fx * (1 + ux * ux) + fy * fy * (1 + uy * uy)) / (zs * zs)
    trace = data.covariances[:, 0] + data.covariances[:, 3] + data.covariances[:, 5]
    ext = np.sqrt(2.0 * np.log(np.maximum(255.0 * data.opacities, 1.0)))
    r = ext * np.sqrt(jacobian_sq * trace + EPS2D) + 1.0
    mx, my = fx * ux + cx, fy * uy + cy
    idx = np.flatnonzero(front & (mx + r > 0) & (mx - r < width) & (my + r > 0) & (my - r < height))
    order = idx[np.argsort(z[idx], kind="stable")[::-1]]
    return np.ascontiguousarray(order, dtype=np.uint32)


class SplatRenderer:
    """Draws one Gaussian scene with a moderngl context (OpenGL ≥ 3.3).

    ``draw`` renders into a framebuffer; ``render`` renders into an internal float
    framebuffer and reads it back as an [H, W, 3] image. The depth sort is redone only when
    the camera pose changes."""

    def __init__(self, ctx: moderngl.Context, gs: GaussianSet | SplatData):
        moderngl = _import_moderngl()
        self.ctx = ctx
        self.data = gs if isinstance(gs, SplatData) else SplatData.from_gaussians(gs)
        d = self.data
        n, k = len(d), d.sh.shape[1]
        width = min(TEXTURE_WIDTH, ctx.info["GL_MAX_TEXTURE_SIZE"])
        rows = -(-max(n, 1) * max(3, k) // width)
        if rows > ctx.info["GL_MAX_TEXTURE_SIZE"]:
            raise SplatpackError(f"{n} Gaussians exceed this OpenGL's texture size limit")

        geom = np.zeros((n, 3, 4), np.float32)
        geom[:, 0, :3], geom[:, 0, 3] = d.means, d.opacities
        geom[:, 1, :] = d.covariances[:, :4]
        geom[:, 2, :2] = d.covariances[:, 4:]
        sh = np.zeros((n, k, 4), np.float32)
        sh[:, :, :3] = d.sh
        self._textures = []
        for unit, texels in enumerate((geom.reshape(-1, 4), sh.reshape(-1, 4))):
            img = _texture_rows(texels, width)
            tex = ctx.texture((width, img.shape[0]), 4, img.tobytes(), dtype="f4")
            tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
            tex.use(unit)
            self._textures.append(tex)

        header = f"#version {GL_VERSION} core\n#define SH_DEGREE {d.sh_degree}\n"
        self.project = ctx.program(
            vertex_shader=header + (SHADER_DIR / "project.vert.glsl").read_text(),
            varyings=["o_quad", "o_shape", "o_color"],
        )
        self.program = ctx.program(
            vertex_shader=header + (SHADER_DIR / "splat.vert.glsl").read_text(),
            fragment_shader=header + (SHADER_DIR / "splat.frag.glsl").read_text(),
        )
        self.project["u_geom"].value = 0
        self.project["u_sh"].value = 1
        self.project["u_near"].value = NEAR_PLANE
        self.project["u_eps2d"].value = EPS2D
        corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
        self._corners = ctx.buffer(corners.tobytes())
        self._ids = ctx.buffer(reserve=max(n, 1) * 4, dynamic=True)
        self._records = ctx.buffer(reserve=max(n, 1) * RECORD_BYTES)
        self._project_vao = ctx.vertex_array(self.project, [(self._ids, "1u", "a_id")])
        self._vao = ctx.vertex_array(
            self.program,
            [(self._corners, "2f", "a_corner"), (self._records, "4f 4f 4f /i", "i_quad", "i_shape", "i_color")],
        )
        self._sorted_for: tuple | None = None
        self._count = 0
        self._fbo: moderngl.Framebuffer | None = None

    def __len__(self) -> int:
        return len(self.data)

    def _sort(self, viewmat: np.ndarray, K: np.ndarray, width: int, height: int) -> None:
        key = (viewmat[:3].tobytes(), K.tobytes(), width, height)
        if key == self._sorted_for:
            return
        order = visible_back_to_front(self.data, viewmat, K, width, height)
        if len(order):
            self._ids.write(order.tobytes())
        self._count = len(order)
        self._sorted_for = key

    def draw(self, c2w: np.ndarray, K: np.ndarray, width: int, height: int, framebuffer, background=(0.0, 0.0, 0.0)):
        """Clear ``framebuffer`` to ``background`` and composite the splats over it, viewed
        by the OpenCV camera ``c2w`` [4, 4] with intrinsics ``K`` [3, 3] at ``width``×``height``."""
        moderngl = _import_moderngl()
        viewmat = np.linalg.inv(np.asarray(c2w, np.float64))
        K = np.asarray(K, np.float64)
        self._sort(viewmat, K, width, height)
        prog = self.project
        prog["u_rot"].write(np.ascontiguousarray(viewmat[:3, :3].T, np.float32).tobytes())  # column-major
        prog["u_trans"].value = tuple(float(v) for v in viewmat[:3, 3])
        prog["u_intr"].value = (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
        prog["u_size"].value = (float(width), float(height))
        if "u_campos" in prog:  # optimised away for SH degree 0
            prog["u_campos"].value = tuple(float(v) for v in np.asarray(c2w, np.float64)[:3, 3])
        framebuffer.use()
        self.ctx.viewport = (0, 0, width, height)
        bg = [float(v) for v in background]
        framebuffer.clear(bg[0], bg[1], bg[2], 0.0)
        if self._count == 0:
            return
        for unit, tex in enumerate(self._textures):
            tex.use(unit)
        self._project_vao.transform(self._records, moderngl.POINTS, vertices=self._count)
        self.program["u_size"].value = (float(width), float(height))
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
        self.ctx.blend_equation = moderngl.FUNC_ADD
        self._vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=self._count)

    def framebuffer(self, width: int, height: int) -> moderngl.Framebuffer:
        """The renderer's float RGBA framebuffer of the given size (reallocated on resize); its
        colour attachment is a texture, so a window can show it scaled."""
        if self._fbo is None or self._fbo.size != (width, height):
            if self._fbo is not None:
                for att in self._fbo.color_attachments:
                    att.release()
                self._fbo.release()
            self._fbo = self.ctx.framebuffer([self.ctx.texture((width, height), 4, dtype="f4")])
        return self._fbo

    def render(self, c2w: np.ndarray, K: np.ndarray, width: int, height: int, background=(0.0, 0.0, 0.0)) -> np.ndarray:
        """One view as float32 [H, W, 3] in 0..1, row 0 at the top (as the CPU renderer)."""
        fbo = self.framebuffer(width, height)
        self.draw(c2w, K, width, height, fbo, background)
        raw = fbo.read(components=4, dtype="f4")
        img = np.frombuffer(raw, np.float32).reshape(height, width, 4)[::-1, :, :3]  # GL rows go up
        return np.ascontiguousarray(np.clip(img, 0.0, 1.0))

    def release(self) -> None:
        for obj in (self._vao, self._project_vao, self._records, self._ids, self._corners, self.program,
                    self.project, *self._textures):  # fmt: skip
            obj.release()
        if self._fbo is not None:
            for att in self._fbo.color_attachments:
                att.release()
            self._fbo.release()
            self._fbo = None


@functools.lru_cache(maxsize=1)
def standalone_context() -> moderngl.Context:
    """A headless OpenGL ≥ 3.3 context: EGL (no X server needed; Mesa llvmpipe without a GPU),
    else GLX on $DISPLAY. Created once per process."""
    moderngl = _import_moderngl()
    errors = []
    for backend in ("egl", None):
        try:
            kw = {"backend": backend} if backend else {}
            return moderngl.create_standalone_context(require=GL_VERSION, **kw)
        except Exception as e:  # glcontext raises bare Exceptions
            errors.append(f"{backend or 'x11'}: {' '.join(str(e).split())}")
    raise SplatpackError(f"no OpenGL {GL_VERSION // 100}.{GL_VERSION // 10 % 10} context ({'; '.join(errors)})")


def release_standalone_context() -> None:
    """Destroy the headless context (renderers made with it become unusable) and unbind it
    from this thread: libglvnd refuses ``glXMakeCurrent`` (X error BadAccess) in a thread that
    still has an EGL context current, so a window cannot open until it is gone."""
    if not standalone_context.cache_info().currsize:
        return
    standalone_context().release()
    standalone_context.cache_clear()
    try:
        ctypes.CDLL("libEGL.so.1").eglReleaseThread()
    except OSError:  # no EGL library: the context was a GLX one, which release() unbound
        pass


def render_offscreen(gs: GaussianSet, c2w: np.ndarray, K: np.ndarray, width: int, height: int,
                     background=(0.0, 0.0, 0.0)) -> np.ndarray:  # fmt: skip
    """Render ``gs`` from the OpenCV camera ``c2w`` with intrinsics ``K`` without a window.

    Returns float32 [H, W, 3] in 0..1 — the OpenGL counterpart of
    :func:`splatpack.render.gaussians.render_image`. For many views of one scene keep a
    :class:`SplatRenderer` instead (the data upload is done once)."""
    renderer = SplatRenderer(standalone_context(), gs)
    try:
        return renderer.render(c2w, K, width, height, background)
    finally:
        renderer.release()


# ---------------------------------------------------------------------------------------------
# interactive camera
# ---------------------------------------------------------------------------------------------

UP_AXES = [np.array(v, np.float64) for v in ((0, -1, 0), (0, 0, 1), (0, 1, 0), (0, 0, -1), (1, 0, 0), (-1, 0, 0))]


@dataclass
class OrbitCamera:
    """A camera orbiting ``target`` at ``distance``, at azimuth ``yaw`` and elevation
    ``pitch`` (radians) about the world ``up`` axis, which points up on screen. The default
    up, −y, is that of COLMAP / INRIA scenes; the viewer's U key cycles the other axes."""

    target: np.ndarray
    distance: float
    yaw: float = 0.0
    pitch: float = math.radians(15.0)
    up: np.ndarray = field(default_factory=lambda: UP_AXES[0].copy())
    fov_degrees: float = 60.0

    @classmethod
    def framing(cls, means: np.ndarray, fov_degrees: float = 60.0, up: np.ndarray | None = None) -> "OrbitCamera":
        """Looks at the median of the Gaussians from far enough to see the central 80 % of
        them (the framing of :func:`splatpack.render.camera.orbit_cameras`)."""
        from splatpack.render.camera import frame_gaussians

        if len(means) == 0:
            return cls(np.zeros(3), 1.0, fov_degrees=fov_degrees)
        centre, dist = frame_gaussians(means, fov_degrees)
        cam = cls(centre, dist, fov_degrees=fov_degrees)
        if up is not None:
            cam.up = np.asarray(up, np.float64)
        return cam

    def _basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Two unit vectors spanning the plane perpendicular to ``up``."""
        ref = np.array([1.0, 0.0, 0.0]) if abs(self.up[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
        e1 = ref - (ref @ self.up) * self.up
        e1 /= np.linalg.norm(e1)
        return e1, np.cross(self.up, e1)

    @property
    def eye(self) -> np.ndarray:
        e1, e2 = self._basis()
        d = math.cos(self.pitch) * (math.cos(self.yaw) * e1 + math.sin(self.yaw) * e2) + math.sin(self.pitch) * self.up
        return self.target + self.distance * d

    def c2w(self) -> np.ndarray:
        """OpenCV camera-to-world: z towards the target, y (screen down) along −up."""
        from splatpack.render.camera import look_at

        return look_at(self.eye, self.target, self.up)  # |pitch| ≤ 89°: never parallel

    def intrinsics(self, width: int, height: int) -> np.ndarray:
        f = 0.5 * height / math.tan(math.radians(self.fov_degrees) / 2)
        return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])

    def orbit(self, d_yaw: float, d_pitch: float) -> None:
        self.yaw += d_yaw
        self.pitch = float(np.clip(self.pitch + d_pitch, -math.radians(89.0), math.radians(89.0)))

    def pan(self, dx_pixels: float, dy_pixels: float, focal: float) -> None:
        """Moves the target with the scene under the cursor (pixels at the target's depth)."""
        c2w = self.c2w()
        s = self.distance / focal
        self.target = self.target - s * dx_pixels * c2w[:3, 0] - s * dy_pixels * c2w[:3, 1]

    def zoom(self, steps: float) -> None:
        self.distance *= 0.9**steps

    def fly(self, forward: float, right: float, rise: float) -> None:
        """Translates eye and target together along the view axes (world units)."""
        c2w = self.c2w()
        self.target = self.target + forward * c2w[:3, 2] + right * c2w[:3, 0] - rise * c2w[:3, 1]


# ---------------------------------------------------------------------------------------------
# window
# ---------------------------------------------------------------------------------------------


@dataclass
class ViewerConfig:
    width: int = 1024
    height: int = 768
    fov_degrees: float = 60.0
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orbit_speed: float = 0.005  # radians per pixel dragged
    fly_speed: float = 0.5  # framing distances per second
    interactive_scale: float = 0.5  # resolution factor while the camera moves (1: always full)
    settle_seconds: float = 0.3  # full resolution again this long after the last movement
    visible: bool = True
    vsync: bool = False


def _require_display(detail: str = "") -> None:
    """On Linux / BSD, a window needs an X11 or Wayland display: fail early, in one line."""
    if sys.platform in ("win32", "darwin") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    detail = f"; {detail}" if detail else ""
    raise SplatpackError(f"cannot open a window: no display (DISPLAY and WAYLAND_DISPLAY are not set{detail})")


def _import_glfw():
    try:
        import glfw
    except ImportError as e:
        raise SplatpackError("the desktop viewer needs the 'glfw' package (pip install moderngl glfw)") from e
    return glfw


class DesktopViewer:
    """A glfw window showing one scene: left drag orbits, right drag pans, the wheel zooms,
    W/A/S/D (and Q/E) fly, U cycles the up axis, R resets the view, Esc closes.

    The splats are drawn into a float framebuffer and shown in the window; a frame is
    re-rendered (and the Gaussians re-sorted) only when the camera or the window size changes.
    While the camera moves, frames are rendered at ``interactive_scale`` × the resolution
    (fragment work dominates on llvmpipe) and once at full resolution when it stops.
    """

    def __init__(self, gs: GaussianSet | SplatData, name: str, config: ViewerConfig | None = None):
        self.config = config or ViewerConfig()
        self.data = gs if isinstance(gs, SplatData) else SplatData.from_gaussians(gs)
        self.count = len(gs)  # as in the file (``data`` drops the invisible, opacity < 1/255)
        self.name = name
        self.camera = OrbitCamera.framing(self.data.means, self.config.fov_degrees)
        self._home = OrbitCamera.framing(self.data.means, self.config.fov_degrees)
        self.window = None
        self.ctx = None
        self.renderer: SplatRenderer | None = None
        self.fps = 0.0
        self._dirty = True
        self._coarse = False  # the frame on screen was rendered at reduced resolution
        self._settle_at = 0.0  # when the camera counts as stopped
        self._drag: tuple[int, float, float] | None = None
        self._last_title = 0.0
        self._glfw_error = ""

    # ---- lifecycle -----------------------------------------------------------------------
    def open(self) -> None:
        glfw = _import_glfw()
        moderngl = _import_moderngl()
        release_standalone_context()
        glfw.ERROR_REPORTING = False  # errors come back through the callback, as one line

        def on_error(code, message):
            self._glfw_error = message.decode() if isinstance(message, bytes) else str(message)

        glfw.set_error_callback(on_error)
        if not glfw.init():
            _require_display(self._glfw_error)
            raise SplatpackError(f"cannot open a window: {self._glfw_error or 'glfw failed to initialise'}")
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.VISIBLE, self.config.visible)
        self.window = glfw.create_window(self.config.width, self.config.height, self._title(), None, None)
        if not self.window:
            glfw.terminate()
            raise SplatpackError(f"cannot create an OpenGL 3.3 core window: {self._glfw_error or 'unknown glfw error'}")
        glfw.make_context_current(self.window)
        glfw.swap_interval(1 if self.config.vsync else 0)
        try:
            self.ctx = moderngl.create_context(require=GL_VERSION)
            self.renderer = SplatRenderer(self.ctx, self.data)
            header = f"#version {GL_VERSION} core\n"
            self._present = self.ctx.program(
                vertex_shader=header + (SHADER_DIR / "present.vert.glsl").read_text(),
                fragment_shader=header + (SHADER_DIR / "present.frag.glsl").read_text(),
            )
            self._present["u_image"].value = 0
            self._present_vao = self.ctx.vertex_array(self._present, [])
        except SplatpackError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise SplatpackError(f"OpenGL 3.3 is not available in this window: {' '.join(str(e).split())}") from e
        glfw.set_cursor_pos_callback(self.window, self._on_cursor)
        glfw.set_mouse_button_callback(self.window, self._on_button)
        glfw.set_scroll_callback(self.window, self._on_scroll)
        glfw.set_key_callback(self.window, self._on_key)
        glfw.set_framebuffer_size_callback(self.window, lambda *_: self._changed(moving=False))

    def close(self) -> None:
        glfw = _import_glfw()
        if self.renderer is not None:
            self.renderer.release()
            self._present_vao.release()
            self._present.release()
            self.renderer = None
        if self.window is not None:
            glfw.destroy_window(self.window)
            self.window = None
        self.ctx = None
        glfw.terminate()

    def __enter__(self) -> "DesktopViewer":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- drawing ---------------------------------------------------------------------------
    def framebuffer_size(self) -> tuple[int, int]:
        return tuple(_import_glfw().get_framebuffer_size(self.window))

    def draw(self, c2w: np.ndarray | None = None, K: np.ndarray | None = None, scale: float = 1.0) -> None:
        """Render one frame into the window's back buffer: the orbit camera unless ``c2w`` and
        ``K`` (for the full framebuffer size) are given; at ``scale`` × the window's resolution,
        bilinearly magnified."""
        moderngl = _import_moderngl()
        w, h = self.framebuffer_size()
        if w == 0 or h == 0:  # minimised
            return
        c2w = self.camera.c2w() if c2w is None else c2w
        K = self.camera.intrinsics(w, h) if K is None else np.asarray(K, np.float64)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        K = np.diag([sw / w, sh / h, 1.0]) @ K  # the same camera on the coarser pixel grid
        fbo = self.renderer.framebuffer(sw, sh)
        self.renderer.draw(c2w, K, sw, sh, fbo, self.config.background)
        image = fbo.color_attachments[0]
        image.filter = (moderngl.LINEAR, moderngl.LINEAR)
        image.use(0)
        self.ctx.screen.use()
        self.ctx.viewport = (0, 0, w, h)
        self.ctx.disable(moderngl.BLEND)
        self._present_vao.render(moderngl.TRIANGLES, vertices=3)

    def read_pixels(self) -> np.ndarray:
        """The window's back buffer (what the last :meth:`draw` rendered) as float [H, W, 3]."""
        w, h = self.framebuffer_size()
        raw = self.ctx.screen.read(viewport=(0, 0, w, h), components=3, alignment=1)
        return np.frombuffer(raw, np.uint8).reshape(h, w, 3)[::-1].astype(np.float32) / 255.0

    def swap(self) -> None:
        _import_glfw().swap_buffers(self.window)

    def _title(self) -> str:
        fps = f" — {self.fps:.1f} fps" if self.fps else ""
        return f"{self.name} — {self.count:,} Gaussians{fps}"

    # ---- input -------------------------------------------------------------------------------
    def _changed(self, moving: bool = True) -> None:
        self._dirty = True
        if moving:
            self._settle_at = time.perf_counter() + self.config.settle_seconds

    def _on_button(self, window, button, action, mods) -> None:
        glfw = _import_glfw()
        if action == glfw.PRESS and button in (glfw.MOUSE_BUTTON_LEFT, glfw.MOUSE_BUTTON_RIGHT):
            x, y = glfw.get_cursor_pos(window)
            self._drag = (button, x, y)
        elif action == glfw.RELEASE:
            self._drag = None

    def _on_cursor(self, window, x, y) -> None:
        glfw = _import_glfw()
        if self._drag is None:
            return
        button, x0, y0 = self._drag
        dx, dy = x - x0, y - y0
        self._drag = (button, x, y)
        if button == glfw.MOUSE_BUTTON_LEFT:
            self.camera.orbit(-dx * self.config.orbit_speed, dy * self.config.orbit_speed)
        else:
            _, wh = glfw.get_window_size(window)
            fw, fh = self.framebuffer_size()
            scale = fh / max(wh, 1)  # window coordinates → framebuffer pixels (HiDPI)
            self.camera.pan(dx * scale, dy * scale, self.camera.intrinsics(fw, fh)[1, 1])
        self._changed()

    def _on_scroll(self, window, dx, dy) -> None:
        self.camera.zoom(dy)
        self._changed()

    def _on_key(self, window, key, scancode, action, mods) -> None:
        glfw = _import_glfw()
        if action != glfw.PRESS:
            return
        if key == glfw.KEY_ESCAPE:
            glfw.set_window_should_close(window, True)
        elif key == glfw.KEY_R:
            up = self.camera.up
            self.camera = OrbitCamera.framing(self.data.means, self.config.fov_degrees, up)
            self._changed(moving=False)
        elif key == glfw.KEY_U:
            i = next((i for i, a in enumerate(UP_AXES) if np.allclose(a, self.camera.up)), -1)
            self.camera.up = UP_AXES[(i + 1) % len(UP_AXES)].copy()
            self._changed(moving=False)

    def _fly(self, dt: float) -> bool:
        glfw = _import_glfw()
        keys = {k: glfw.get_key(self.window, k) == glfw.PRESS for k in
                (glfw.KEY_W, glfw.KEY_S, glfw.KEY_A, glfw.KEY_D, glfw.KEY_Q, glfw.KEY_E)}  # fmt: skip
        fwd = keys[glfw.KEY_W] - keys[glfw.KEY_S]
        right = keys[glfw.KEY_D] - keys[glfw.KEY_A]
        rise = keys[glfw.KEY_E] - keys[glfw.KEY_Q]
        if not (fwd or right or rise):
            return False
        step = self.config.fly_speed * self._home.distance * min(dt, 0.5)  # no leap after a stall
        self.camera.fly(fwd * step, right * step, rise * step)
        return True

    # ---- main loop -------------------------------------------------------------------------
    def run(self) -> None:
        """Show the window until it is closed; re-render only when the view changes."""
        glfw = _import_glfw()
        last = time.perf_counter()
        while not glfw.window_should_close(self.window):
            now = time.perf_counter()
            if self._fly(now - last):
                self._changed()
            last = now
            moving = now < self._settle_at
            if self._dirty or (self._coarse and not moving):
                scale = self.config.interactive_scale if moving else 1.0
                self._dirty, self._coarse = False, scale < 1.0
                t0 = time.perf_counter()
                self.draw(scale=scale)
                self.swap()
                self.ctx.finish()
                dt = max(time.perf_counter() - t0, 1e-6)
                self.fps = 1.0 / dt if not self.fps else 0.7 * self.fps + 0.3 / dt
                if now - self._last_title > 0.25:
                    glfw.set_window_title(self.window, self._title())
                    self._last_title = now
                glfw.poll_events()
            else:
                glfw.wait_events_timeout(0.02 if self._coarse else 0.1)


def run_desktop_viewer(path: str | Path, width: int = 1024, height: int = 768) -> None:
    """Open ``path`` (any scene :func:`splatpack.formats.load_scene` reads) in a window."""
    from splatpack.formats import load_scene

    path = Path(path)
    if not path.exists():
        raise SplatpackError("file does not exist", path)
    _import_moderngl()
    _import_glfw()
    _require_display()  # before a possibly long load
    gs = load_scene(path)
    with DesktopViewer(gs, path.name, ViewerConfig(width=width, height=height)) as viewer:
        viewer.run()
