"""The desktop viewer's window (glfw): input handling, reduced resolution while the camera moves,
and :func:`run_desktop_viewer` behind ``splatpack view --desktop``."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.formats import load_scene
from splatpack.view.desktop.camera import UP_AXES, OrbitCamera
from splatpack.view.desktop.context import (
    GL_VERSION,
    import_glfw,
    import_moderngl,
    release_standalone_context,
    require_display,
    shader_source,
)
from splatpack.view.desktop.data import SplatData
from splatpack.view.desktop.renderer import SplatRenderer
from splatpack.view.framing import Framing


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


class DesktopViewer:
    """A glfw window showing one scene: left drag orbits, right drag pans, the wheel zooms,
    W/A/S/D (and Q/E) fly, U cycles the up axis, R resets the view, Esc closes. The view starts
    (and R returns) at ``framing`` when given, else at a robust framing of the Gaussians.

    The splats are drawn into a float framebuffer and shown in the window; a frame is
    re-rendered (and the Gaussians re-sorted) only when the camera or the window size changes.
    While the camera moves, frames are rendered at ``interactive_scale`` × the resolution
    (fragment work dominates on llvmpipe) and once at full resolution when it stops.
    """

    def __init__(
        self, gs: GaussianSet | SplatData, name: str, config: ViewerConfig | None = None, framing: Framing | None = None
    ):
        self.config = config or ViewerConfig()
        self.data = gs if isinstance(gs, SplatData) else SplatData.from_gaussians(gs)
        self.count = len(gs)  # as in the file (``data`` drops the invisible, opacity < 1/255)
        self.name = name
        if framing is not None:
            self._home = OrbitCamera.from_framing(framing)
        else:
            self._home = OrbitCamera.framing(self.data.means, self.config.fov_degrees, opacities=self.data.opacities)
        self.camera = self._home_camera()
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

    def _home_camera(self) -> OrbitCamera:
        home = self._home
        return dataclasses.replace(home, target=home.target.copy(), up=home.up.copy())

    # ---- lifecycle -----------------------------------------------------------------------
    def open(self) -> None:
        glfw = import_glfw()
        moderngl = import_moderngl()
        release_standalone_context()
        glfw.ERROR_REPORTING = False  # errors come back through the callback, as one line

        def on_error(code, message):
            self._glfw_error = message.decode() if isinstance(message, bytes) else str(message)

        glfw.set_error_callback(on_error)
        if not glfw.init():
            require_display(self._glfw_error)
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
            self._present = self.ctx.program(
                vertex_shader=shader_source("present.vert.glsl"), fragment_shader=shader_source("present.frag.glsl")
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
        glfw = import_glfw()
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

    def __enter__(self) -> DesktopViewer:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- drawing ---------------------------------------------------------------------------
    def framebuffer_size(self) -> tuple[int, int]:
        return tuple(import_glfw().get_framebuffer_size(self.window))

    def draw(self, c2w: np.ndarray | None = None, K: np.ndarray | None = None, scale: float = 1.0) -> None:
        """Render one frame into the window's back buffer: the orbit camera unless ``c2w`` and
        ``K`` (for the full framebuffer size) are given; at ``scale`` × the window's resolution,
        bilinearly magnified."""
        moderngl = import_moderngl()
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
        import_glfw().swap_buffers(self.window)

    def _title(self) -> str:
        fps = f" — {self.fps:.1f} fps" if self.fps else ""
        return f"{self.name} — {self.count:,} Gaussians{fps}"

    # ---- input -------------------------------------------------------------------------------
    def _changed(self, moving: bool = True) -> None:
        self._dirty = True
        if moving:
            self._settle_at = time.perf_counter() + self.config.settle_seconds

    def _on_button(self, window, button, action, mods) -> None:
        glfw = import_glfw()
        if action == glfw.PRESS and button in (glfw.MOUSE_BUTTON_LEFT, glfw.MOUSE_BUTTON_RIGHT):
            x, y = glfw.get_cursor_pos(window)
            self._drag = (button, x, y)
        elif action == glfw.RELEASE:
            self._drag = None

    def _on_cursor(self, window, x, y) -> None:
        glfw = import_glfw()
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
        glfw = import_glfw()
        if action != glfw.PRESS:
            return
        if key == glfw.KEY_ESCAPE:
            glfw.set_window_should_close(window, True)
        elif key == glfw.KEY_R:
            self.camera = self._home_camera()
            self._changed(moving=False)
        elif key == glfw.KEY_U:
            i = next((i for i, a in enumerate(UP_AXES) if np.allclose(a, self.camera.up)), -1)
            self.camera.up = UP_AXES[(i + 1) % len(UP_AXES)].copy()
            self._changed(moving=False)

    def _fly(self, dt: float) -> bool:
        glfw = import_glfw()
        keys = {
            k: glfw.get_key(self.window, k) == glfw.PRESS
            for k in (glfw.KEY_W, glfw.KEY_S, glfw.KEY_A, glfw.KEY_D, glfw.KEY_Q, glfw.KEY_E)
        }
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
        glfw = import_glfw()
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


def run_desktop_viewer(path: str | Path, width: int = 1024, height: int = 768, framing: Framing | None = None) -> None:
    """Open ``path`` (any scene :func:`splatpack.formats.load_scene` reads) in a window, starting
    at ``framing`` (and on its background) when given."""
    path = Path(path)
    if not path.exists():
        raise SplatpackError("file does not exist", path)
    import_moderngl()
    import_glfw()
    require_display()  # before a possibly long load
    gs = load_scene(path)
    config = ViewerConfig(width=width, height=height)
    if framing is not None and framing.background is not None:
        config.background = framing.background
    with DesktopViewer(gs, path.name, config, framing) as viewer:
        viewer.run()
