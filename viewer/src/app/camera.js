// OpenCV pinhole cameras in three.js, and framing a scene.
//
// splatpack (like COLMAP, gsplat and the INRIA 3DGS code) describes a view by a camera-to-world
// matrix in OpenCV axes (x right, y down, z forward) and intrinsics fx, fy, cx, cy in pixels,
// pixel (i, j) covering [i, i+1) x [j, j+1). three.js cameras look down -z with y up and map
// clip space to the viewport, so the pose gets its y and z axes flipped and the projection
// matrix is built from the intrinsics directly (off-centre principal points and fx != fy
// included) instead of from a field of view. Spark takes its focal lengths from that matrix
// (projectionMatrix[0][0], [1][1]), so splat footprints match the reference rasteriser.
import * as THREE from "three";

/** Default clip planes; Spark drops splats outside them. */
export const NEAR = 0.01;
export const FAR = 1e5;
/** Vertical field of view (degrees) without a framing. */
export const DEFAULT_FOV = 50;

/**
 * Pose a three.js camera from a row-major OpenCV camera-to-world matrix (16 numbers).
 * @param {THREE.Camera} camera
 * @param {ArrayLike<number>} c2w
 */
export function setOpenCvPose(camera, c2w) {
  if (!c2w || c2w.length !== 16) throw new Error("setCamera: c2w must be 16 numbers (row-major 4x4)");
  const m = new THREE.Matrix4().set(...Array.from(c2w, Number));
  // OpenCV -> OpenGL camera axes: negate the y and z columns.
  m.multiply(new THREE.Matrix4().makeScale(1, -1, -1));
  const scale = new THREE.Vector3();
  m.decompose(camera.position, camera.quaternion, scale);
  camera.updateMatrixWorld(true);
}

/**
 * The OpenGL projection matrix of pinhole intrinsics for a width x height viewport.
 * x_ndc = 2 (fx X/Z + cx) / W - 1 and y_ndc = 1 - 2 (fy Y/Z + cy) / H for an OpenCV point (X, Y, Z).
 */
export function projectionFromIntrinsics({ fx, fy, cx, cy, width, height, near = NEAR, far = FAR }) {
  for (const [k, v] of Object.entries({ fx, fy, cx, cy, width, height })) {
    if (!Number.isFinite(v)) throw new Error(`setCamera: ${k} must be a finite number`);
  }
  return new THREE.Matrix4().set(
    (2 * fx) / width, 0, 1 - (2 * cx) / width, 0,
    0, (2 * fy) / height, (2 * cy) / height - 1, 0,
    0, 0, -(far + near) / (far - near), (-2 * far * near) / (far - near),
    0, 0, -1, 0,
  );
}

/** Give a perspective camera a fixed projection matrix (kept until `releaseProjection`). */
export function setFixedProjection(camera, matrix, near = NEAR, far = FAR) {
  camera.near = near;
  camera.far = far;
  camera.projectionMatrix.copy(matrix);
  camera.projectionMatrixInverse.copy(matrix).invert();
  camera.userData.fixedProjection = true;
}

/** Back to a projection from the camera's fov and aspect. */
export function releaseProjection(camera, aspect) {
  camera.userData.fixedProjection = false;
  camera.aspect = aspect;
  camera.updateProjectionMatrix();
}

/** Component-wise median of an xyz Float32Array (on a sample for large scenes). */
export function medianOfMeans(means, maxSamples = 200000) {
  const n = Math.floor(means.length / 3);
  if (n === 0) return new THREE.Vector3();
  const step = Math.max(1, Math.floor(n / maxSamples));
  const m = Math.ceil(n / step);
  const axis = new Float32Array(m);
  const out = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    for (let i = 0, k = 0; k < m; i += step, k++) axis[k] = means[3 * i + a];
    axis.sort();
    out[a] = axis[Math.floor(m / 2)];
  }
  return new THREE.Vector3(...out);
}

/** 80th percentile of the distances of the means from `centre` (robust scene radius). */
export function radiusAround(means, centre, maxSamples = 200000) {
  const n = Math.floor(means.length / 3);
  if (n === 0) return 1;
  const step = Math.max(1, Math.floor(n / maxSamples));
  const d = new Float32Array(Math.ceil(n / step));
  for (let i = 0, k = 0; k < d.length; i += step, k++) {
    const x = means[3 * i] - centre.x, y = means[3 * i + 1] - centre.y, z = means[3 * i + 2] - centre.z;
    d[k] = Math.sqrt(x * x + y * y + z * z);
  }
  d.sort();
  return Math.max(d[Math.floor(0.8 * (d.length - 1))], 1e-3);
}

/**
 * Place `camera` to look at `centre` from far enough to see a sphere of `radius` with a 30 %
 * margin, slightly from above. World "up" is -y: splat captures (COLMAP / INRIA) have y
 * pointing down.
 */
export function frameSphere(camera, centre, radius, up = new THREE.Vector3(0, -1, 0)) {
  const fov = THREE.MathUtils.degToRad(camera.fov);
  const dist = (radius / Math.sin(Math.min(fov, fov * camera.aspect) / 2)) * 1.3;
  const el = THREE.MathUtils.degToRad(15);
  // Start from the -z side (the usual front of a capture), raised by 15 degrees.
  const back = new THREE.Vector3(0, 0, -1).projectOnPlane(up).normalize();
  const dir = back.multiplyScalar(Math.cos(el)).addScaledVector(up, Math.sin(el)).normalize();
  camera.up.copy(up);
  camera.position.copy(centre).addScaledVector(dir, dist);
  camera.lookAt(centre);
  camera.updateMatrixWorld(true);
  return dist;
}

/** Three finite numbers as a Vector3, or an error naming the field. */
function vector3(v, name) {
  if (!Array.isArray(v) || v.length !== 3 || !v.every(Number.isFinite)) {
    throw new Error(`framing: ${name} must be three finite numbers`);
  }
  return new THREE.Vector3(...v);
}

/**
 * A framing from config.json ({centre, eye, up, fov, radius, background, source}, computed by
 * splatpack.view.framing) as three.js values, checked.
 */
export function parseFraming(f) {
  const fov = Number(f.fov);
  if (!(fov > 0 && fov < 180)) throw new Error("framing: fov must be in (0, 180) degrees");
  const up = vector3(f.up, "up");
  if (up.lengthSq() === 0) throw new Error("framing: up must not be zero");
  const bg = f.background;
  return {
    centre: vector3(f.centre, "centre"),
    eye: vector3(f.eye, "eye"),
    up: up.normalize(),
    fov,
    radius: Number.isFinite(f.radius) && f.radius > 0 ? f.radius : 1,
    background: bg ? new THREE.Color().setRGB(...vector3(bg, "background").toArray(), THREE.SRGBColorSpace) : null,
    source: typeof f.source === "string" ? f.source : null,
  };
}

/**
 * Put `camera` at a parsed framing: its field of view and up, at its eye looking at its centre.
 * The framing fits the scene in a square view; in a portrait window (aspect < 1) the eye moves
 * back by 1 / aspect so that the narrower width still holds it.
 */
export function applyFraming(camera, framing) {
  camera.fov = framing.fov;
  camera.up.copy(framing.up);
  const offset = framing.eye.clone().sub(framing.centre);
  if (camera.aspect > 0 && camera.aspect < 1) offset.divideScalar(camera.aspect);
  camera.position.copy(framing.centre).add(offset);
  camera.lookAt(framing.centre);
  if (!camera.userData.fixedProjection) camera.updateProjectionMatrix();
  camera.updateMatrixWorld(true);
}
