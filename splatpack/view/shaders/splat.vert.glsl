// Splat quad: four corners (a triangle strip) per instance, one instance per Gaussian in
// back-to-front order, reading the records project.vert.glsl captured. Maps image pixels
// (y down, OpenCV) to normalised device coordinates (y up), so row 0 of the image is the top
// row of the viewport.

uniform vec2 u_size;        // image width, height in pixels

in vec2 a_corner;           // (±1, ±1)
in vec4 i_quad;             // projected mean, first half-axis
in vec4 i_shape;            // second half-axis length, conic (a, b, c)
in vec4 i_color;            // rgb, opacity

out vec2 v_offset;          // pixel offset from the projected mean (image axes, y down)
flat out vec3 v_conic;
flat out vec4 v_color;
flat out float v_sigma_max; // ln(255·o): larger Mahalanobis terms give α < 1/255

void main() {
    vec2 axis1 = i_quad.zw;
    vec2 axis2 = vec2(-axis1.y, axis1.x) * (i_shape.x / max(length(axis1), 1e-30));
    vec2 offset = a_corner.x * axis1 + a_corner.y * axis2;
    vec2 pix = i_quad.xy + offset;
    gl_Position = vec4(2.0 * pix.x / u_size.x - 1.0, 1.0 - 2.0 * pix.y / u_size.y, 0.0, 1.0);
    v_offset = offset;
    v_conic = i_shape.yzw;
    v_color = i_color;
    v_sigma_max = log(255.0 * i_color.a);
}
