"""Gaussian splats rasterised with OpenGL 3.3 (moderngl), following splatpack's CPU renderer step
for step so that the two agree up to float rounding:

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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.view.desktop.context import import_moderngl, shader_source, standalone_context
from splatpack.view.desktop.data import EPS2D, NEAR_PLANE, SplatData, texture_rows, visible_back_to_front

if TYPE_CHECKING:
    import moderngl

TEXTURE_WIDTH = 4096  # texels per row of the data textures
RECORD_BYTES = 48  # one projected Gaussian: three vec4 (project.vert.glsl's outputs)


class SplatRenderer:
    """Draws one Gaussian scene with a moderngl context (OpenGL ≥ 3.3).

    ``draw`` renders into a framebuffer; ``render`` renders into an internal float
    framebuffer and reads it back as an [H, W, 3] image. The depth sort is redone only when
    the camera pose changes."""

    def __init__(self, ctx: moderngl.Context, gs: GaussianSet | SplatData):
        moderngl = import_moderngl()
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
            img = texture_rows(texels, width)
            tex = ctx.texture((width, img.shape[0]), 4, img.tobytes(), dtype="f4")
            tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
            tex.use(unit)
            self._textures.append(tex)

        defines = f"#define SH_DEGREE {d.sh_degree}\n"
        self.project = ctx.program(
            vertex_shader=shader_source("project.vert.glsl", defines),
            varyings=["o_quad", "o_shape", "o_color"],
        )
        self.program = ctx.program(
            vertex_shader=shader_source("splat.vert.glsl", defines),
            fragment_shader=shader_source("splat.frag.glsl", defines),
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
        moderngl = import_moderngl()
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
            self._release_framebuffer()
            self._fbo = self.ctx.framebuffer([self.ctx.texture((width, height), 4, dtype="f4")])
        return self._fbo

    def _release_framebuffer(self) -> None:
        if self._fbo is not None:
            for att in self._fbo.color_attachments:
                att.release()
            self._fbo.release()
            self._fbo = None

    def render(self, c2w: np.ndarray, K: np.ndarray, width: int, height: int, background=(0.0, 0.0, 0.0)) -> np.ndarray:
        """One view as float32 [H, W, 3] in 0..1, row 0 at the top (as the CPU renderer)."""
        fbo = self.framebuffer(width, height)
        self.draw(c2w, K, width, height, fbo, background)
        raw = fbo.read(components=4, dtype="f4")
        img = np.frombuffer(raw, np.float32).reshape(height, width, 4)[::-1, :, :3]  # GL rows go up
        return np.ascontiguousarray(np.clip(img, 0.0, 1.0))

    def release(self) -> None:
        for obj in (
            self._vao,
            self._project_vao,
            self._records,
            self._ids,
            self._corners,
            self.program,
            self.project,
            *self._textures,
        ):
            obj.release()
        self._release_framebuffer()


def render_offscreen(
    gs: GaussianSet, c2w: np.ndarray, K: np.ndarray, width: int, height: int, background=(0.0, 0.0, 0.0)
) -> np.ndarray:
    """Render ``gs`` from the OpenCV camera ``c2w`` with intrinsics ``K`` without a window.

    Returns float32 [H, W, 3] in 0..1 — the OpenGL counterpart of
    :func:`splatpack.render.gaussians.render_image`. For many views of one scene keep a
    :class:`SplatRenderer` instead (the data upload is done once)."""
    renderer = SplatRenderer(standalone_context(), gs)
    try:
        return renderer.render(c2w, K, width, height, background)
    finally:
        renderer.release()
