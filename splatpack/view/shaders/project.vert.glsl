// Per-Gaussian pass (transform feedback, one point per Gaussian, no rasterisation).
//
// It does what splatpack's CPU renderer does per Gaussian (splatpack/render/cpu_projection.py,
// splatpack/render/projection.py): EWA projection Σ' = J W Σ Wᵀ Jᵀ with the perspective
// Jacobian's frustum clamp (1.3·tan(fov/2)), the 0.3 px low-pass filter, the conic Σ'⁻¹, the
// opacity-aware extent √(2 ln 255·o), near-plane culling, and the SH colour
// max(Σ c_k Y_k(d̂) + 0.5, 0) (splatpack/render/sh.py). The splat's quad is the ellipse's
// bounding rectangle along the eigenvectors of Σ', so no pixel that can pass the α ≥ 1/255
// test lies outside it. Pixel coordinates follow OpenCV/K: (0, 0) is the top-left corner of the
// image, pixel (i, j) has its centre at (i + 0.5, j + 0.5).
//
// The points come in back-to-front order (a_id), so the captured records are in drawing order
// and splat.vert.glsl reads them as per-instance attributes. Done once per Gaussian rather than
// once per quad corner: on llvmpipe, vertex work is single-threaded.
//
// SH_DEGREE is defined by the host (0..3) before compilation.

uniform sampler2D u_geom;   // 3 texels per Gaussian: (mean, opacity), (Σxx, Σxy, Σxz, Σyy), (Σyz, Σzz, 0, 0)
uniform sampler2D u_sh;     // (SH_DEGREE + 1)² texels per Gaussian: one (r, g, b, 0) coefficient each
uniform mat3 u_rot;         // world → camera rotation W
uniform vec3 u_trans;       // world → camera translation t
uniform vec4 u_intr;        // fx, fy, cx, cy
uniform vec2 u_size;        // image width, height in pixels
uniform vec3 u_campos;      // camera centre in world space (SH view direction)
uniform float u_near;
uniform float u_eps2d;

in uint a_id;               // Gaussian index, sorted back to front

out vec4 o_quad;            // projected mean (pixels), first half-axis of the quad (pixels)
out vec4 o_shape;           // length of the second half-axis, conic Σ'⁻¹ = [[a, b], [b, c]] as (a, b, c)
out vec4 o_color;           // rgb, opacity

const float SH_C0 = 0.28209479177387814;
const float SH_C1 = 0.4886025119029199;
const float SH_C2[5] = float[5](1.0925484305920792, -1.0925484305920792, 0.31539156525252005,
                                -1.0925484305920792, 0.5462742152960396);
const float SH_C3[7] = float[7](-0.5900435899266435, 2.890611442640554, -0.4570457994644658,
                                0.3731763325901154, -0.4570457994644658, 1.445305721320277,
                                -0.5900435899266435);

vec4 fetch(sampler2D tex, int linear) {
    int w = textureSize(tex, 0).x;
    return texelFetch(tex, ivec2(linear % w, linear / w), 0);
}

vec3 sh_color(int id, vec3 mean) {
    const int K = (SH_DEGREE + 1) * (SH_DEGREE + 1);
    int base = id * K;
    vec3 c = SH_C0 * fetch(u_sh, base).rgb;
#if SH_DEGREE >= 1
    vec3 d = normalize(mean - u_campos);
    float x = d.x, y = d.y, z = d.z;
    c += -SH_C1 * y * fetch(u_sh, base + 1).rgb + SH_C1 * z * fetch(u_sh, base + 2).rgb
         - SH_C1 * x * fetch(u_sh, base + 3).rgb;
#endif
#if SH_DEGREE >= 2
    float xx = x * x, yy = y * y, zz = z * z, xy = x * y, yz = y * z, xz = x * z;
    c += SH_C2[0] * xy * fetch(u_sh, base + 4).rgb
       + SH_C2[1] * yz * fetch(u_sh, base + 5).rgb
       + SH_C2[2] * (2.0 * zz - xx - yy) * fetch(u_sh, base + 6).rgb
       + SH_C2[3] * xz * fetch(u_sh, base + 7).rgb
       + SH_C2[4] * (xx - yy) * fetch(u_sh, base + 8).rgb;
#endif
#if SH_DEGREE >= 3
    c += SH_C3[0] * y * (3.0 * xx - yy) * fetch(u_sh, base + 9).rgb
       + SH_C3[1] * xy * z * fetch(u_sh, base + 10).rgb
       + SH_C3[2] * y * (4.0 * zz - xx - yy) * fetch(u_sh, base + 11).rgb
       + SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * fetch(u_sh, base + 12).rgb
       + SH_C3[4] * x * (4.0 * zz - xx - yy) * fetch(u_sh, base + 13).rgb
       + SH_C3[5] * z * (xx - yy) * fetch(u_sh, base + 14).rgb
       + SH_C3[6] * x * (xx - 3.0 * yy) * fetch(u_sh, base + 15).rgb;
#endif
    return max(c + 0.5, 0.0);
}

void cull() {  // a zero-area quad, which the rasteriser drops
    o_quad = vec4(0.0);
    o_shape = vec4(0.0);
    o_color = vec4(0.0);
}

void main() {
    int id = int(a_id);
    vec4 g0 = fetch(u_geom, 3 * id);
    vec4 g1 = fetch(u_geom, 3 * id + 1);
    vec4 g2 = fetch(u_geom, 3 * id + 2);
    vec3 mean = g0.xyz;
    float opacity = g0.w;
    vec3 p = u_rot * mean + u_trans;
    if (!(p.z > u_near) || opacity < 1.0 / 255.0) {
        cull();
        return;
    }
    float fx = u_intr.x, fy = u_intr.y, cx = u_intr.z, cy = u_intr.w;
    float tan_x = 0.5 * u_size.x / fx, tan_y = 0.5 * u_size.y / fy;
    float ux = clamp(p.x / p.z, -(cx / fx + 0.3 * tan_x), (u_size.x - cx) / fx + 0.3 * tan_x);
    float uy = clamp(p.y / p.z, -(cy / fy + 0.3 * tan_y), (u_size.y - cy) / fy + 0.3 * tan_y);
    // rows of J pulled back to world space: J W Σ Wᵀ Jᵀ = (Wᵀ J_i)ᵀ Σ (Wᵀ J_j)
    vec3 j0 = transpose(u_rot) * vec3(fx / p.z, 0.0, -fx * ux / p.z);
    vec3 j1 = transpose(u_rot) * vec3(0.0, fy / p.z, -fy * uy / p.z);
    mat3 sigma = mat3(g1.x, g1.y, g1.z,
                      g1.y, g1.w, g2.x,
                      g1.z, g2.x, g2.y);
    vec3 s0 = sigma * j0, s1 = sigma * j1;
    float A = dot(j0, s0) + u_eps2d;
    float B = dot(j0, s1);
    float D = dot(j1, s1) + u_eps2d;
    float det = A * D - B * B;
    if (!(det > 0.0)) {
        cull();
        return;
    }
    vec2 mean2d = vec2(fx * p.x / p.z + cx, fy * p.y / p.z + cy);

    float sigma_max = log(255.0 * opacity);
    float ext = sqrt(2.0 * max(sigma_max, 0.0));
    float mid = 0.5 * (A + D);
    float disc = sqrt(max(0.25 * (A - D) * (A - D) + B * B, 0.0));
    float l1 = mid + disc, l2 = max(mid - disc, 0.0);
    vec2 e1 = A >= D ? vec2(l1 - D, B) : vec2(B, l1 - A);
    float n1 = length(e1);
    e1 = n1 > 0.0 ? e1 / n1 : vec2(1.0, 0.0);
    // a hair wider than the ellipse so rounding never drops a pixel centre on its rim
    o_quad = vec4(mean2d, 1.001 * ext * sqrt(l1) * e1);
    o_shape = vec4(1.001 * ext * sqrt(l2), vec3(D, -B, A) / det);
    o_color = vec4(sh_color(id, mean), opacity);
}
