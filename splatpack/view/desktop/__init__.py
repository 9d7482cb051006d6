"""Desktop viewer: Gaussian splats rasterised with OpenGL 3.3 in a native window.

Why OpenGL rather than the CPU renderer: a splat is a quad, so the fixed-function blender does
the compositing, and Mesa's llvmpipe runs the same shaders on machines without a GPU (and
without an X server for offscreen rendering, through EGL). The port follows the CPU renderer
step for step (:mod:`.renderer` says how), so the two agree up to float rounding.

================  ==========================================================================
:mod:`.data`      :class:`SplatData` (what the shaders read), the back-to-front visibility sort
:mod:`.renderer`  :class:`SplatRenderer` (many images from one context), :func:`render_offscreen`
:mod:`.context`   moderngl / glfw imports, shader sources, the headless (EGL / GLX) context
:mod:`.camera`    :class:`OrbitCamera`: orbit / pan / zoom / fly about a world up axis
:mod:`.window`    :class:`DesktopViewer` / :func:`run_desktop_viewer`: a glfw window rendering at
                  reduced resolution while the camera moves
================  ==========================================================================

moderngl and glfw are optional: they are imported when a context or a window is made.
"""

from splatpack.view.desktop.camera import UP_AXES, OrbitCamera
from splatpack.view.desktop.context import release_standalone_context, standalone_context
from splatpack.view.desktop.data import SplatData, visible_back_to_front
from splatpack.view.desktop.renderer import SplatRenderer, render_offscreen
from splatpack.view.desktop.window import DesktopViewer, ViewerConfig, run_desktop_viewer

__all__ = [
    "UP_AXES",
    "DesktopViewer",
    "OrbitCamera",
    "SplatData",
    "SplatRenderer",
    "ViewerConfig",
    "release_standalone_context",
    "render_offscreen",
    "run_desktop_viewer",
    "standalone_context",
    "visible_back_to_front",
]
