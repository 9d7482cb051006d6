"""The desktop viewer's optional dependencies (moderngl, glfw), its shader sources and headless
OpenGL contexts."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from splatpack.core.errors import SplatpackError

if TYPE_CHECKING:
    import moderngl

SHADER_DIR = Path(__file__).resolve().parent.parent / "shaders"
GL_VERSION = 330


def import_moderngl():
    try:
        import moderngl
    except ImportError as e:
        raise SplatpackError("the desktop viewer needs the 'moderngl' package (pip install moderngl glfw)") from e
    return moderngl


def import_glfw():
    try:
        import glfw
    except ImportError as e:
        raise SplatpackError("the desktop viewer needs the 'glfw' package (pip install moderngl glfw)") from e
    return glfw


def require_display(detail: str = "") -> None:
    """On Linux / BSD, a window needs an X11 or Wayland display: fail early, in one line."""
    if sys.platform in ("win32", "darwin") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    detail = f"; {detail}" if detail else ""
    raise SplatpackError(f"cannot open a window: no display (DISPLAY and WAYLAND_DISPLAY are not set{detail})")


def shader_source(name: str, defines: str = "") -> str:
    """The GLSL source ``shaders/<name>`` behind a ``#version`` line and ``defines``."""
    return f"#version {GL_VERSION} core\n{defines}" + (SHADER_DIR / name).read_text()


@functools.lru_cache(maxsize=1)
def standalone_context() -> moderngl.Context:
    """A headless OpenGL ≥ 3.3 context: EGL (no X server needed; Mesa llvmpipe without a GPU),
    else GLX on $DISPLAY. Created once per process."""
    moderngl = import_moderngl()
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
    with contextlib.suppress(OSError):  # no EGL library: the context was a GLX one, which release() unbound
        ctypes.CDLL("libEGL.so.1").eglReleaseThread()
