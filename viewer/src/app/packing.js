// Gaussians as flat arrays -> Spark PackedSplats (16 bytes a splat, plus SH textures).
//
// Spark's packed encoding: rgba 4 x u8 (rgb mapped from [rgbMin, rgbMax]), centre as 3 half
// floats, an octahedral quaternion in 24 bits and log-scales in 3 x u8. Higher SH bands live in
// `extra.sh1` (2 words: 9 x sint7), `extra.sh2` (4 words: 15 x sint8) and `extra.sh3`
// (4 words: 21 x sint6), each coefficient-major ([k][rgb], the layout of `shRest`) and scaled
// by `splatEncoding.sh{1,2,3}Max`. Here the ranges are taken from the data so no coefficient
// clips and none wastes precision.
import { PackedSplats, defines, utils } from "@sparkjsdev/spark";

const { setPackedSplat, setPackedSplatRgb, encodeSh1Rgb, encodeSh2Rgb, encodeSh3Rgb, getTextureSize } = utils;

/** SH DC coefficient to colour: c = 0.5 + Y00 * dc. */
export const SH_C0 = 0.28209479177387814;

/** Colours (3N, about 0..1) of the DC coefficients. */
export function dcToRgb(sh0) {
  const rgb = new Float32Array(sh0.length);
  for (let i = 0; i < sh0.length; i++) rgb[i] = 0.5 + SH_C0 * sh0[i];
  return rgb;
}

function rangeOf(values, lo, hi) {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    else if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** Largest |value| of coefficients [k0, k1) of an [N][K][3] array. */
function maxAbsBand(shRest, n, K, k0, k1) {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const base = (i * K + k0) * 3;
    for (let j = 0; j < (k1 - k0) * 3; j++) {
      const a = Math.abs(shRest[base + j]);
      if (a > m) m = a;
    }
  }
  return m > 0 ? m : 1;
}

/**
 * SH bands 1..degree as Spark's `extra` arrays and their scales.
 * @param {Float32Array} shRest [N][K][3], K = (degree+1)^2 - 1
 */
export function packSh(shRest, n, degree) {
  const K = (degree + 1) * (degree + 1) - 1;
  if (shRest.length < n * K * 3) throw new Error(`SH rest has ${shRest.length} values, expected ${n * K * 3}`);
  const { maxSplats } = getTextureSize(n);
  const extra = {};
  const scales = {};
  const bands = [
    [1, 0, 3, 2, encodeSh1Rgb],
    [2, 3, 8, 4, encodeSh2Rgb],
    [3, 8, 15, 4, encodeSh3Rgb],
  ];
  for (const [band, k0, k1, words, encode] of bands) {
    if (degree < band) break;
    const max = maxAbsBand(shRest, n, K, k0, k1);
    scales[`sh${band}Max`] = max;
    const array = new Uint32Array(maxSplats * words);
    const enc = { [`sh${band}Max`]: max };
    for (let i = 0; i < n; i++) {
      const base = (i * K + k0) * 3;
      encode(array, i, shRest.subarray(base, base + (k1 - k0) * 3), enc);
    }
    extra[`sh${band}`] = array;
  }
  return { extra, scales };
}

/**
 * PackedSplats of decoded Gaussians.
 * @param {{numGaussians:number, means:Float32Array, scales:Float32Array, quats:Float32Array,
 *          opacities:Float32Array, shDegree?:number, shRest?:Float32Array|null}} g
 *        scales linear, quats w,x,y,z, opacities 0..1
 * @param {Float32Array} rgb base colours (3N)
 * @returns {{packedSplats: PackedSplats, splatEncoding: object}}
 */
export function buildPackedSplats(g, rgb) {
  const n = g.numGaussians;
  const [rgbMin, rgbMax] = rangeOf(rgb, 0, 1);
  let extra = {};
  let shScales = {};
  if (g.shRest && g.shDegree > 0) ({ extra, scales: shScales } = packSh(g.shRest, n, g.shDegree));
  const splatEncoding = { ...defines.DEFAULT_SPLAT_ENCODING, rgbMin, rgbMax, ...shScales };
  const { maxSplats } = getTextureSize(Math.max(n, 1));
  const packed = new Uint32Array(maxSplats * 4);
  const { means: m, scales: s, quats: q, opacities: o } = g;
  for (let i = 0; i < n; i++) {
    const i3 = 3 * i, i4 = 4 * i;
    setPackedSplat(
      packed, i,
      m[i3], m[i3 + 1], m[i3 + 2],
      s[i3], s[i3 + 1], s[i3 + 2],
      q[i4 + 1], q[i4 + 2], q[i4 + 3], q[i4],
      o[i],
      rgb[i3], rgb[i3 + 1], rgb[i3 + 2],
      splatEncoding,
    );
  }
  const packedSplats = new PackedSplats({ packedArray: packed, numSplats: n, extra, splatEncoding });
  return { packedSplats, splatEncoding };
}

/**
 * Replace the base colours of packed splats (e.g. from a view-dependent colour field).
 * Colours outside the packed rgb range are clipped to it.
 */
export function recolour(packedSplats, rgb) {
  const n = packedSplats.numSplats;
  const packed = packedSplats.packedArray;
  const enc = packedSplats.splatEncoding;
  for (let i = 0; i < n; i++) {
    setPackedSplatRgb(packed, i, rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], enc);
  }
  packedSplats.needsUpdate = true;
}
