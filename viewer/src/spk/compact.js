/**
 * Compact scenes (`meta.kind = "compact-3dgs"`, docs/spk-format.md §5): Morton-coded positions,
 * quantised opacities, R-VQ scales and rotations and a hash-grid colour field (or per-Gaussian SH).
 *
 * A port of `splatpack.codecs.compact.read_compact` (the checks) and `dequantize` (the
 * arithmetic, float32 like the Python decoder):
 *
 * * position — u64 prefix sum of the byte-plane differences, de-interleaved (x in bit 0), then
 *   `lo + q · (max(hi − lo, 1e-12) / (2^b − 1))`;
 * * opacity — α = q / (2^bits − 1);
 * * scale — Σ_s C_s[k_s] in stage order, exp() when `meta.scale_space` is "log" (the default);
 * * rotation — Σ_s R_s[k_s], normalised here (w, x, y, z);
 * * colour — the field of {@link makeColourField}, or `colour.sh` split into DC and rest.
 */

import { halfToFloat, toFloat32 } from './codecs.js';
import { fieldConfig, makeColourField } from './colour_field.js';

const f32 = Math.fround;
export const COMPACT_KIND = 'compact-3dgs';

/** Bits 0, 3, 6, …, 27 of a uint32 packed into bits 0..9. */
function compact10(v) {
  v &= 0x09249249;
  v = (v ^ (v >>> 2)) & 0x030c30c3;
  v = (v ^ (v >>> 4)) & 0x0300f00f;
  v = (v ^ (v >>> 8)) & 0xff0000ff;
  v = (v ^ (v >>> 16)) & 0x000003ff;
  return v;
}

/**
 * Positions [N, 3] (float32) from the `positions` byte planes [N, nb] (§5 "position").
 * The 64-bit Morton code is kept as two uint32 halves (lo, hi) with a carry.
 */
export function decodePositions(planes, n, nb, meta) {
  const bits = meta.position.bits;
  const levels = f32(2 ** bits - 1);
  const lo = meta.position.lo.map(f32);
  const hi = meta.position.hi.map(f32);
  const step = lo.map((l, k) => f32(Math.max(f32(hi[k] - l), f32(1e-12)) / levels));
  const out = new Float32Array(3 * n);
  let mlo = 0;
  let mhi = 0;
  for (let i = 0; i < n; i++) {
    let dlo = 0;
    let dhi = 0;
    const row = i * nb;
    for (let b = 0; b < nb; b++) {
      const v = planes[row + b];
      if (b < 4) dlo += v * 2 ** (8 * b);
      else dhi += v * 2 ** (8 * (b - 4));
    }
    const sum = mlo + dlo;
    mlo = sum % 4294967296;
    mhi = (mhi + dhi + Math.floor(sum / 4294967296)) % 4294967296;
    // groups of 3 bits: 0..9 in lo, group 10 = lo bits 30, 31 and hi bit 0, groups 11..20 in hi >>> 1
    const l = mlo | 0;
    const h = mhi | 0;
    const qx = compact10(l) | (((l >>> 30) & 1) << 10) | (compact10(h >>> 1) << 11);
    const qy = compact10(l >>> 1) | (((l >>> 31) & 1) << 10) | (compact10(h >>> 2) << 11);
    const qz = compact10(l >>> 2) | ((h & 1) << 10) | (compact10(h >>> 3) << 11);
    out[3 * i] = f32(lo[0] + f32(qx * step[0]));
    out[3 * i + 1] = f32(lo[1] + f32(qy * step[1]));
    out[3 * i + 2] = f32(lo[2] + f32(qz * step[2]));
  }
  return out;
}

/** Σ_s books[s][idx[i, s]] (float32, stage order) → [N, dim]. */
function rvqDecode(idx, n, stages, books, k, dim) {
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < stages; s++) {
      const e = (s * k + idx[i * stages + s]) * dim;
      for (let d = 0; d < dim; d++) out[i * dim + d] = f32(out[i * dim + d] + books[e + d]);
    }
  }
  return out;
}

/**
 * Decode a compact scene.
 * @param {import('./container.js').SpkFile} spk the open file
 * @param {(name: string, opts: object) => Promise<{dtype: string, shape: number[], data: any}>} section
 *   reads and decodes one section (with timing and progress), see scene.js
 * @param {((g: object) => (void|Promise<void>))|null} [onGeometry] called (and awaited) with the
 *   dequantised geometry `{means, scales, quats, opacities}` before the colour sections are read
 */
export async function decodeCompact(spk, section, onGeometry = null) {
  const m = spk.meta;
  const n = spk.numGaussians;
  const fail = (problem) => spk.fail(problem);
  const bad = (why) => fail(`malformed compact-scene header (${why})`);
  const perGaussian = Math.max(n, 1) * 64;
  /** Section `name`, its element count bounded (and its shape, when known, checked before decoding). */
  const arr = async (name, check, perG = true, shape = undefined) => {
    if (!spk.has(name)) throw fail(`section '${name}' is missing`);
    const a = await section(name, { maxElements: perG ? perGaussian : undefined, shape });
    if (check && !check(a)) throw fail(`section '${name}' has shape (${a.shape.join(', ')}), which does not fit ${n} Gaussians`);
    return a;
  };
  const pos = m.position;
  if (!pos || !Number.isInteger(pos.bits) || pos.bits < 1 || pos.bits > 21) throw bad('position bits');
  const nums = (v) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!nums(pos.lo) || !nums(pos.hi)) throw bad('position lo/hi');
  const opBits = m.opacity?.bits;
  if (!Number.isInteger(opBits) || opBits < 1 || opBits > 16) throw bad('opacity bits');
  const nb = Math.ceil((3 * pos.bits) / 8);
  const is2d = (a, cols) => a.shape.length === 2 && a.shape[0] === n && (cols === undefined || a.shape[1] === cols);

  const planes = await arr('positions', (a) => is2d(a, nb) && a.dtype === 'u8', true, [n, nb]);
  const opac = await arr('opacities', (a) => a.shape.length === 1 && a.shape[0] === n, true, [n]);
  const sidx = await arr('scales.indices', (a) => is2d(a));
  const ridx = await arr('rotations.indices', (a) => is2d(a));
  const sb = await arr('scales.codebooks', (a) => a.shape.length === 3 && a.shape[2] === 3 && a.shape[0] === sidx.shape[1], false);
  const rb = await arr('rotations.codebooks', (a) => a.shape.length === 3 && a.shape[2] === 4 && a.shape[0] === ridx.shape[1], false);
  const maxOf = (a) => a.data.reduce((x, y) => (y > x ? y : x), 0);
  if (n && (maxOf(sidx) >= sb.shape[1] || maxOf(ridx) >= rb.shape[1])) throw fail('an R-VQ index is out of its codebook');

  // dequantise
  const means = decodePositions(planes.data, n, nb, m);
  const opLevels = f32(2 ** opBits - 1);
  const opacities = new Float32Array(n);
  for (let i = 0; i < n; i++) opacities[i] = f32(opac.data[i] / opLevels);
  const S = sidx.shape[1];
  const R = ridx.shape[1];
  const s = rvqDecode(sidx.data, n, S, toFloat32(sb), sb.shape[1], 3);
  const logSpace = (m.scale_space ?? 'log') === 'log';
  const scales = new Float32Array(3 * n);
  for (let k = 0; k < 3 * n; k++) scales[k] = logSpace ? f32(Math.exp(s[k])) : Math.max(Math.abs(s[k]), 1e-12);
  const quats = rvqDecode(ridx.data, n, R, toFloat32(rb), rb.shape[1], 4);
  normaliseQuats(quats);

  await onGeometry?.({ means, scales, quats, opacities });

  const colour = m.colour;
  if (!colour || typeof colour !== 'object') throw bad('no colour');
  let field = null;
  let sh = null;
  let cfg = null;
  let table = null;
  let layers = null;
  if (colour.kind === 'hash-grid-field') {
    cfg = fieldConfig(colour, spk.name);
    const F = cfg.grid.n_features_per_level;
    const total = cfg.levels.reduce((s, lv) => s + lv.size, 0) * F;
    if (!(typeof colour.step === 'number' && Number.isFinite(colour.step))) throw bad('colour step');
    const step = f32(colour.step);
    table = new Float32Array(total);
    for (let l = 0; l < cfg.levels.length; l++) {
      const lv = cfg.levels[l];
      const name = `colour.hash.${String(l).padStart(2, '0')}`;
      const a = await arr(name, (x) => x.shape.length === 2 && x.shape[0] === lv.size && x.shape[1] === F, false, [lv.size, F]);
      const base = lv.offset * F;
      for (let k = 0; k < a.data.length; k++) table[base + k] = f32(a.data[k] * step);
    }
    const flat = await arr('colour.mlp', (a) => a.shape.length === 1 && a.dtype === 'f16', false);
    const shapes = colour.mlp_shapes;
    if (!Array.isArray(shapes) || shapes.length < 2 || shapes.length % 2) throw bad('mlp_shapes');
    const weights = halfToFloat(flat.data);
    layers = [];
    let o = 0;
    let width = cfg.levels.length * F + (cfg.shDegree + 1) ** 2;
    for (let k = 0; k < shapes.length; k += 2) {
      const [ws, bs] = [shapes[k], shapes[k + 1]];
      const ints = (s) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 1 && d <= 4096);
      if (!ints(ws) || !ints(bs) || ws.length !== 2 || bs.length !== 1 || bs[0] !== ws[0] || ws[1] !== width) {
        throw bad(`MLP layer ${k / 2} has shapes ${JSON.stringify(ws)}, ${JSON.stringify(bs)} for ${width} inputs`);
      }
      const size = ws[0] * ws[1] + bs[0];
      if (o + size > weights.length) break;
      layers.push({ weight: weights.subarray(o, o + ws[0] * ws[1]), bias: weights.subarray(o + ws[0] * ws[1], o + size), out: ws[0], in: ws[1] });
      o += size;
      width = ws[0];
    }
    if (o !== weights.length || layers.length !== shapes.length / 2) {
      throw fail("section 'colour.mlp' does not match the MLP shapes in the header");
    }
    if (width !== 3) throw bad('the MLP must end with 3 outputs');
  } else if (colour.kind === 'sh') {
    sh = await arr('colour.sh', (a) => a.shape.length === 3 && a.shape[0] === n && a.shape[2] === 3);
  } else {
    throw fail(`unknown colour kind ${JSON.stringify(colour.kind)}`);
  }

  let sh0 = null;
  let shRest = null;
  let shDegree = 0;
  if (sh) {
    const K = sh.shape[1];
    shDegree = Math.round(Math.sqrt(K)) - 1;
    if ((shDegree + 1) ** 2 !== K || shDegree > 3) throw fail(`section 'colour.sh' has ${K} coefficients, not 1, 4, 9 or 16`);
    const all = toFloat32(sh);
    sh0 = new Float32Array(3 * n);
    shRest = shDegree ? new Float32Array(n * (K - 1) * 3) : null;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) sh0[3 * i + c] = all[i * K * 3 + c];
      if (shRest) shRest.set(all.subarray(i * K * 3 + 3, (i + 1) * K * 3), i * (K - 1) * 3);
    }
  } else {
    field = makeColourField(means, cfg, table, layers);
  }
  return {
    kind: 'compact',
    numGaussians: n,
    meta: m,
    means,
    scales,
    quats,
    opacities,
    shDegree,
    sh0,
    shRest,
    colourField: field ? { colours: field.colours } : null,
  };
}

/** Normalise quaternions [N, 4] in place (q / max(‖q‖, 1e-12), as F.normalize). */
export function normaliseQuats(q) {
  for (let i = 0; i < q.length; i += 4) {
    const norm = Math.sqrt(q[i] * q[i] + q[i + 1] * q[i + 1] + q[i + 2] * q[i + 2] + q[i + 3] * q[i + 3]);
    const d = Math.max(norm, 1e-12);
    q[i] /= d;
    q[i + 1] /= d;
    q[i + 2] /= d;
    q[i + 3] /= d;
  }
}
