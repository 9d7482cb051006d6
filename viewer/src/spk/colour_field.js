/**
 * The colour field of compact scenes (docs/spk-format.md §5, "colour"; Compact-3DGS eq. 5):
 *
 *     f_i(c) = MLP( HashGrid(contract(μ_i)) ⊕ SH₃(normalize(μ_i − c)) ),   rgb = max(0, ½ + C₀·f)
 *
 * A float32 port of `splatpack.compress.colour_field.ColourField` as evaluated on the CPU:
 *
 * * `contract` — `contract_to_unisphere`: the box to [−1, 1]³, points with ‖x‖ > 1 to
 *   (2 − 1/‖x‖)·x/‖x‖, then x/4 + ½;
 * * `HashGrid` — tiny-cuda-nn's multiresolution hash encoding exactly as
 *   `splatpack.compress.hash_grid` computes it (numba kernel): per-level scale
 *   `exp2f(l·log2f(b))·N_min − 1` in float32, position `fl32(x·s + ½)`, coherent-prime hash
 *   (1, 2654435761, 805459861) or dense indexing, corners summed in order cx + 2cy + 4cz with
 *   fused multiply-adds — so the per-Gaussian features equal Python's bit for bit;
 * * `SH₃` — the real SH basis of 3DGS (`splatpack.core.sh.eval_sh_bases`), float32 ops;
 * * MLP — ReLU between layers, none after the last (sums in float64, rounded per layer: within
 *   ~1e-6 of torch's float32 matrix products).
 *
 * The grid part does not depend on the camera: {@link makeColourField} evaluates it once per
 * Gaussian and folds it into the first layer (`b₀ + W₀[:, grid]·enc`), so a new camera only
 * evaluates the 16 SH values, their part of the first layer and the remaining layers.
 */

import { SpkError } from './errors.js';

const f32 = Math.fround;
const PRIME_Y = 2654435761;
const PRIME_Z = 805459861;
const MAX_PARAMS = 0x7fffffff; // tcnn's cap on a dense level: U32 // 2
export const SH_C0 = 0.28209479177387814;
const SH_C1 = 0.4886025119029199;
const SH_C2 = [1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396];
const SH_C3 = [
  -0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
  1.445305721320277, -0.5900435899266435,
];
const C3 = SH_C3.map(Math.fround);
/** Above this many first-layer activations (N × hidden) the grid features are kept instead. */
const MAX_FOLDED = 1 << 25;

/**
 * Per-level layout of the hash table (`hash_grid.grid_levels`): entry offset, size, resolution,
 * float32 scale and whether the level is dense.
 * @param {{n_levels: number, n_features_per_level: number, log2_hashmap_size: number,
 *   base_resolution: number, per_level_scale: number}} grid
 */
export function gridLevels(grid) {
  const cap = 2 ** grid.log2_hashmap_size;
  const log2b = f32(Math.log2(f32(grid.per_level_scale)));
  const levels = [];
  let offset = 0;
  for (let l = 0; l < grid.n_levels; l++) {
    const t = f32(f32(l) * log2b);
    const growth = f32(2 ** t);
    const scale = f32(f32(growth * f32(grid.base_resolution)) - 1);
    const res = Math.ceil(scale) + 1;
    let dense = res ** 3 <= MAX_PARAMS ? res ** 3 : MAX_PARAMS;
    dense = Math.ceil(dense / 8) * 8;
    const size = Math.min(dense, cap);
    levels.push({ offset, size, resolution: res, scale, dense: res ** 3 <= size });
    offset += size;
  }
  return levels;
}

/**
 * Check a field's configuration (from `meta.colour`) and return it normalised.
 * @throws {SpkError} when the config is malformed or unsupported
 */
export function fieldConfig(colour, file) {
  const bad = (why) => new SpkError(`malformed compact-scene header (colour field: ${why})`, file);
  const cfg = colour?.config;
  const grid = cfg?.grid;
  if (!grid || typeof grid !== 'object') throw bad('no grid config');
  const int = (v, lo, hi, what) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw bad(`${what} must be an integer in ${lo}..${hi}, not ${v}`);
    return v;
  };
  const g = {
    n_levels: int(grid.n_levels ?? 16, 1, 32, 'n_levels'),
    n_features_per_level: int(grid.n_features_per_level ?? 2, 1, 8, 'n_features_per_level'),
    log2_hashmap_size: int(grid.log2_hashmap_size ?? 19, 1, 30, 'log2_hashmap_size'),
    base_resolution: int(grid.base_resolution ?? 16, 1, 1 << 20, 'base_resolution'),
    per_level_scale: grid.per_level_scale ?? 1.447,
  };
  if (![1, 2, 4, 8].includes(g.n_features_per_level)) throw bad('n_features_per_level must be 1, 2, 4 or 8');
  if (typeof g.per_level_scale !== 'number' || !(g.per_level_scale >= 1 && g.per_level_scale < 16)) {
    throw bad(`per_level_scale ${g.per_level_scale} is out of range`);
  }
  const shDegree = int(cfg.dir_sh_degree ?? 3, 0, 3, 'dir_sh_degree');
  const aabb = colour.aabb;
  const ok =
    Array.isArray(aabb) &&
    aabb.length === 2 &&
    aabb.every((v) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x)));
  if (!ok) throw bad('aabb must be two [x, y, z] lists');
  const lo = aabb[0].map(f32);
  const hi = aabb[1].map(f32);
  if (!lo.every((v, k) => hi[k] > v)) throw bad('aabb max must exceed aabb min on every axis');
  return { grid: g, shDegree, lo, hi, levels: gridLevels(g) };
}

/** contract_to_unisphere of one point (float32 ops), written into out[0..2]. */
function contract(px, py, pz, lo, span, out) {
  let x = f32(f32(f32(f32(px - lo[0]) / span[0]) * 2) - 1);
  let y = f32(f32(f32(f32(py - lo[1]) / span[1]) * 2) - 1);
  let z = f32(f32(f32(f32(pz - lo[2]) / span[2]) * 2) - 1);
  const mag = f32(Math.sqrt(f32(f32(f32(x * x) + f32(y * y)) + f32(z * z))));
  if (mag > 1) {
    const k = f32(2 - f32(1 / mag));
    x = f32(k * f32(x / mag));
    y = f32(k * f32(y / mag));
    z = f32(k * f32(z / mag));
  }
  out[0] = f32(f32(x * 0.25) + 0.5);
  out[1] = f32(f32(y * 0.25) + 0.5);
  out[2] = f32(f32(z * 0.25) + 0.5);
}

/**
 * Hash-grid features [N, L·F] of the contracted positions (the numba kernel of
 * `hash_grid._grid_kernels`, operation for operation).
 * @param {Float32Array} xs contracted positions [N, 3]
 * @param {Float32Array} table the flat float32 hash table
 */
export function hashEncode(xs, table, grid, levels) {
  const n = xs.length / 3;
  const F = grid.n_features_per_level;
  const L = levels.length;
  const D = L * F;
  const out = new Float32Array(n * D);
  const acc = new Float64Array(8);
  for (let l = 0; l < L; l++) {
    const lv = levels[l];
    const scale = lv.scale;
    const size = lv.size;
    const mask = size - 1;
    const base = lv.offset * F;
    const dense = lv.dense;
    const sy = dense ? lv.resolution : PRIME_Y;
    const sz = dense ? lv.resolution * lv.resolution : PRIME_Z;
    for (let i = 0; i < n; i++) {
      const px = f32(xs[3 * i] * scale + 0.5);
      const py = f32(xs[3 * i + 1] * scale + 0.5);
      const pz = f32(xs[3 * i + 2] * scale + 0.5);
      const gx = Math.floor(px);
      const gy = Math.floor(py);
      const gz = Math.floor(pz);
      const tx = px - gx;
      const ty = py - gy;
      const tz = pz - gz;
      const ax0 = gx >>> 0;
      const ax1 = (gx + 1) >>> 0;
      const ay0 = Math.imul(gy, sy) >>> 0;
      const ay1 = Math.imul(gy + 1, sy) >>> 0;
      const az0 = Math.imul(gz, sz) >>> 0;
      const az1 = Math.imul(gz + 1, sz) >>> 0;
      for (let f = 0; f < F; f++) acc[f] = 0;
      for (let cz = 0; cz < 2; cz++) {
        const az = cz ? az1 : az0;
        const wz = cz ? tz : f32(1 - tz);
        for (let cy = 0; cy < 2; cy++) {
          const ay = cy ? ay1 : ay0;
          const wy = cy ? ty : f32(1 - ty);
          for (let cx = 0; cx < 2; cx++) {
            const ax = cx ? ax1 : ax0;
            const wx = cx ? tx : f32(1 - tx);
            const w = f32(f32(wx * wy) * wz);
            let e;
            if (dense) {
              e = (ax + ay + az) >>> 0;
              if (e >= size) e %= size;
            } else {
              e = (ax ^ ay ^ az) & mask;
            }
            const p = base + e * F;
            for (let f = 0; f < F; f++) acc[f] = f32(w * table[p + f] + acc[f]);
          }
        }
      }
      const o = i * D + l * F;
      for (let f = 0; f < F; f++) out[o + f] = acc[f];
    }
  }
  return out;
}

/**
 * Y[b, o] = Σ_k W[o·stride + off + k] · X[b, k] for the four rows b of a block (row strides
 * `xs`, `ys`): each weight is loaded once for four independent float64 sums.
 */
function matmul4(W, stride, off, nOut, nIn, X, xs, Y, ys) {
  for (let o = 0; o < nOut; o++) {
    const wo = o * stride + off;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let k = 0; k < nIn; k++) {
      const w = W[wo + k];
      a0 += w * X[k];
      a1 += w * X[xs + k];
      a2 += w * X[2 * xs + k];
      a3 += w * X[3 * xs + k];
    }
    Y[o] = a0;
    Y[ys + o] = a1;
    Y[2 * ys + o] = a2;
    Y[3 * ys + o] = a3;
  }
}

/** Real SH basis (degree ≤ 3) of a unit direction, float32 ops as `eval_sh_bases`. */
function shBasis(degree, x, y, z, out) {
  out[0] = f32(SH_C0);
  if (degree < 1) return;
  const c1 = f32(SH_C1);
  out[1] = f32(-c1 * y);
  out[2] = f32(c1 * z);
  out[3] = f32(-c1 * x);
  if (degree < 2) return;
  const xx = f32(x * x);
  const yy = f32(y * y);
  const zz = f32(z * z);
  const xy = f32(x * y);
  const yz = f32(y * z);
  const xz = f32(x * z);
  out[4] = f32(f32(SH_C2[0]) * xy);
  out[5] = f32(f32(SH_C2[1]) * yz);
  out[6] = f32(f32(SH_C2[2]) * f32(f32(f32(2 * zz) - xx) - yy));
  out[7] = f32(f32(SH_C2[3]) * xz);
  out[8] = f32(f32(SH_C2[4]) * f32(xx - yy));
  if (degree < 3) return;
  out[9] = f32(f32(C3[0] * y) * f32(f32(3 * xx) - yy));
  out[10] = f32(f32(C3[1] * xy) * z);
  out[11] = f32(f32(C3[2] * y) * f32(f32(f32(4 * zz) - xx) - yy));
  out[12] = f32(f32(C3[3] * z) * f32(f32(f32(2 * zz) - f32(3 * xx)) - f32(3 * yy)));
  out[13] = f32(f32(C3[4] * x) * f32(f32(f32(4 * zz) - xx) - yy));
  out[14] = f32(f32(C3[5] * z) * f32(xx - yy));
  out[15] = f32(f32(C3[6] * x) * f32(xx - f32(3 * yy)));
}

/** F.normalize of a 3-vector in float32 (x / max(‖x‖, 1e-12)), into out. */
function normalize3(x, y, z, out) {
  const norm = f32(Math.sqrt(f32(f32(f32(x * x) + f32(y * y)) + f32(z * z))));
  const d = Math.max(norm, f32(1e-12));
  out[0] = f32(x / d);
  out[1] = f32(y / d);
  out[2] = f32(z / d);
}

/**
 * Build the colour field of a compact scene.
 *
 * @param {Float32Array} means decoded positions [N, 3]
 * @param {ReturnType<typeof fieldConfig>} cfg from {@link fieldConfig}
 * @param {Float32Array} table the dequantised hash table (q · step)
 * @param {{weight: Float32Array, bias: Float32Array, out: number, in: number}[]} layers the MLP
 * @param {{foldLimit?: number}} [options] fold the grid into the first layer (N × hidden floats
 *   kept) while N × hidden ≤ `foldLimit` (default 2^25, 128 MB); above it the grid features
 *   (N × L·F floats) are kept and multiplied per camera
 * @returns {{colours(cameraPosition: number[]): Float32Array, features: Float32Array}}
 *   `colours` gives RGB = max(0, ½ + C₀·f) per Gaussian [N, 3] for a camera centre, as Python's
 *   `field_colors` followed by the rasteriser's SH-to-colour step.
 */
export function makeColourField(means, cfg, table, layers, { foldLimit = MAX_FOLDED } = {}) {
  const n = means.length / 3;
  const span = cfg.hi.map((h, k) => f32(h - cfg.lo[k]));
  const xs = new Float32Array(3 * n);
  const tmp = new Float32Array(3);
  for (let i = 0; i < n; i++) {
    contract(means[3 * i], means[3 * i + 1], means[3 * i + 2], cfg.lo, span, tmp);
    xs.set(tmp, 3 * i);
  }
  const enc = hashEncode(xs, table, cfg.grid, cfg.levels);
  const nEnc = cfg.levels.length * cfg.grid.n_features_per_level;
  const nSh = (cfg.shDegree + 1) ** 2;
  // float64 copies of the weights: the sums run in float64 (see the module docstring)
  const mlp = layers.map((l) => ({ weight: Float64Array.from(l.weight), bias: Float64Array.from(l.bias), out: l.out, in: l.in }));
  const first = mlp[0];
  const h0 = first.out;
  // fold the camera-independent part of the first layer: b0 + W0[:, :nEnc] · enc
  const folded = n * h0 <= foldLimit;
  const pre = folded ? new Float32Array(n * h0) : null;
  if (folded) {
    const rows = new Float64Array(4 * nEnc);
    const sums = new Float64Array(4 * h0);
    for (let i0 = 0; i0 < n; i0 += 4) {
      const nb = Math.min(4, n - i0);
      for (let k = 0; k < 4 * nEnc; k++) rows[k] = k < nb * nEnc ? enc[i0 * nEnc + k] : 0;
      matmul4(first.weight, first.in, 0, h0, nEnc, rows, nEnc, sums, h0);
      for (let k = 0; k < nb * h0; k++) pre[i0 * h0 + k] = first.bias[k % h0] + sums[k];
    }
  }
  const maxWidth = Math.max(nEnc, ...mlp.map((l) => l.out));
  const B = 4; // Gaussians per block: each weight is loaded once for four of them
  const actA = new Float64Array(B * maxWidth);
  const actB = new Float64Array(B * maxWidth);
  const encPart = new Float64Array(B * maxWidth);
  const encBlock = new Float64Array(B * nEnc);
  const shBlock = new Float64Array(B * 16);
  const shTmp = new Float32Array(16);
  const dir = new Float32Array(3);

  function colours(cameraPosition) {
    const [cx, cy, cz] = Array.from(cameraPosition, (v) => f32(v));
    const out = new Float32Array(3 * n);
    for (let i0 = 0; i0 < n; i0 += B) {
      const nb = Math.min(B, n - i0);
      for (let b = 0; b < B; b++) {
        const i = i0 + Math.min(b, nb - 1); // a short last block repeats its last Gaussian
        // view_dirs normalises μ − c; the field normalises again
        normalize3(f32(means[3 * i] - cx), f32(means[3 * i + 1] - cy), f32(means[3 * i + 2] - cz), dir);
        normalize3(dir[0], dir[1], dir[2], dir);
        shBasis(cfg.shDegree, dir[0], dir[1], dir[2], shTmp);
        for (let k = 0; k < nSh; k++) shBlock[b * 16 + k] = shTmp[k];
        if (!folded) for (let k = 0; k < nEnc; k++) encBlock[b * nEnc + k] = enc[i * nEnc + k];
      }
      // layer 0: (b0 + W0[:, :nEnc]·enc, folded or not) + W0[:, nEnc:]·sh
      matmul4(first.weight, first.in, nEnc, h0, nSh, shBlock, 16, actA, maxWidth);
      if (!folded) matmul4(first.weight, first.in, 0, h0, nEnc, encBlock, nEnc, encPart, maxWidth);
      for (let b = 0; b < B; b++) {
        const i = i0 + Math.min(b, nb - 1);
        for (let o = 0; o < h0; o++) {
          const base = folded ? pre[i * h0 + o] : first.bias[o] + encPart[b * maxWidth + o];
          actA[b * maxWidth + o] = f32(base + actA[b * maxWidth + o]);
        }
      }
      let src = actA;
      let width = h0;
      for (let l = 1; l < mlp.length; l++) {
        const { weight, bias, out: nOut, in: nIn } = mlp[l];
        const dst = src === actA ? actB : actA;
        for (let k = 0; k < B * maxWidth; k++) if (src[k] < 0) src[k] = 0; // ReLU between layers
        matmul4(weight, nIn, 0, nOut, width, src, maxWidth, dst, maxWidth);
        for (let b = 0; b < B; b++) for (let o = 0; o < nOut; o++) dst[b * maxWidth + o] = f32(bias[o] + dst[b * maxWidth + o]);
        src = dst;
        width = nOut;
      }
      for (let b = 0; b < nb; b++) {
        for (let c = 0; c < 3; c++) out[3 * (i0 + b) + c] = Math.max(0, f32(f32(src[b * maxWidth + c] * f32(SH_C0)) + 0.5));
      }
    }
    return out;
  }

  return { colours, features: enc };
}
