// Shows the float splat image in the window, bilinearly scaled when it was rendered at a
// lower resolution (while the camera moves); at equal sizes every window pixel samples its
// texel's centre, so the values pass through unchanged (clamped to 0..1 by the 8-bit window).

uniform sampler2D u_image;

in vec2 v_uv;
out vec4 frag_color;

void main() {
    frag_color = vec4(texture(u_image, v_uv).rgb, 1.0);
}
