// Gaussian splat fragment shader: the CPU compositor's per-pixel test and weight
// (splatpack/render/cpu_kernels.py): σ = ½(a·dx² + c·dy²) + b·dx·dy, skipped when σ < 0 or
// σ > ln(255·o), α = min(0.999, o·e^{−σ}), skipped when α < 1/255. The output is premultiplied
// (rgb·α, α) for back-to-front blending with (ONE, ONE_MINUS_SRC_ALPHA).

in vec2 v_offset;
flat in vec3 v_conic;
flat in vec4 v_color;
flat in float v_sigma_max;

out vec4 frag_color;

void main() {
    vec2 d = v_offset;
    float sigma = 0.5 * (v_conic.x * d.x * d.x + v_conic.z * d.y * d.y) + v_conic.y * d.x * d.y;
    if (sigma < 0.0 || sigma > v_sigma_max) {
        discard;
    }
    float alpha = min(0.999, v_color.a * exp(-sigma));
    if (alpha < 1.0 / 255.0) {
        discard;
    }
    frag_color = vec4(v_color.rgb * alpha, alpha);
}
