/**
 * Array codecs of `.spk` section payloads (docs/spk-format.md §3): `raw`, `deflate`, `ans` and
 * the image codecs `jxl`, `png`, `webp`. A port of the decoders in `splatpack/spk/arrays/`.
 *
 * Every payload starts with the array header of §3 (dtype, ndim, shape). The element count is
 * bounded (`maxElements`, default 2^28) before anything sized by the payload is allocated, and an
 * expected shape / dtype, when given, is checked from the header before decoding.
 *
 * A decoded array is `{dtype, shape, data}`: `dtype` one of u8 i8 u16 i16 u32 i32 u64 i64 f16
 * f32 f64, `shape` an array of numbers, `data` a typed array of the elements in C order —
 * Uint8Array … Float64Array, BigUint64Array / BigInt64Array for u64 / i64, and for f16 a
 * Uint16Array of the IEEE half-precision bit patterns (see {@link halfToFloat}).
 */

import { decodeAnsBody } from './ans.js';
import { SpkError } from './errors.js';
import { decodeImage, IMAGE_CODECS } from './images.js';

/** dtype code of the array header → dtype name, element size and typed-array constructor. */
export const DTYPES = {
  1: { dtype: 'u8', size: 1, ctor: Uint8Array },
  2: { dtype: 'i8', size: 1, ctor: Int8Array },
  3: { dtype: 'u16', size: 2, ctor: Uint16Array },
  4: { dtype: 'i16', size: 2, ctor: Int16Array },
  5: { dtype: 'u32', size: 4, ctor: Uint32Array },
  6: { dtype: 'i32', size: 4, ctor: Int32Array },
  7: { dtype: 'u64', size: 8, ctor: BigUint64Array },
  8: { dtype: 'i64', size: 8, ctor: BigInt64Array },
  9: { dtype: 'f16', size: 2, ctor: Uint16Array },
  10: { dtype: 'f32', size: 4, ctor: Float32Array },
  11: { dtype: 'f64', size: 8, ctor: Float64Array },
};
export const CODECS = new Set(['raw', 'deflate', 'ans', ...IMAGE_CODECS]);
export const MAX_NDIM = 8;
export const MAX_DIM = 2 ** 40;
export const DEFAULT_MAX_ELEMENTS = 2 ** 28;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Bounds-checked cursor over a payload; every failure is an {@link SpkError} naming the array,
 * `array 'NAME' (CODEC): problem`, prefixed with the file name.
 */
export class Cursor {
  constructor(bytes, name, codec, file) {
    this.bytes = bytes;
    this.pos = 0;
    this.name = name;
    this.codec = codec;
    this.file = file;
  }

  fail(problem) {
    return new SpkError(`array '${this.name}' (${this.codec}): ${problem}`, this.file);
  }

  get remaining() {
    return this.bytes.length - this.pos;
  }

  take(n, what) {
    if (n > this.remaining) throw this.fail(`payload truncated in ${what}`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u8(what) {
    return this.take(1, what)[0];
  }

  /** Unsigned LEB128, at most 10 bytes, < 2^64 (returned as a float: exact below 2^53). */
  varint(what) {
    let value = 0;
    let mul = 1;
    for (let k = 0; k < 10; k++) {
      if (this.pos >= this.bytes.length) throw this.fail(`payload truncated in ${what}`);
      const b = this.bytes[this.pos++];
      value += (b & 0x7f) * mul;
      if (!(b & 0x80)) {
        if (value >= 2 ** 64) throw this.fail(`${what} out of range`);
        return value;
      }
      mul *= 128;
    }
    throw this.fail(`${what} is not a valid varint`);
  }

  /** `n` little-endian u32 words from the current position (a view when aligned). */
  u32Array(n) {
    const raw = this.take(4 * n, 'compressed words');
    return typedView(raw, Uint32Array, n);
  }
}

/** A typed array of `count` elements over `raw` (no copy when `raw` is aligned for it). */
function typedView(raw, ctor, count) {
  if (!LITTLE_ENDIAN) throw new SpkError('this decoder needs a little-endian platform');
  if (raw.byteOffset % ctor.BYTES_PER_ELEMENT === 0) return new ctor(raw.buffer, raw.byteOffset, count);
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  return new ctor(copy.buffer, 0, count);
}

function shapeString(shape) {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

function sameShape(a, b) {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Parse the array header (§3) at the cursor.
 * @returns {{dtype: string, size: number, ctor: Function, shape: number[], count: number}}
 */
export function readArrayHeader(r, maxElements, expect) {
  const code = r.u8('array header');
  const ndim = r.u8('array header');
  if (r.take(6, 'array header').some((x) => x !== 0)) throw r.fail('reserved header bytes are not zero');
  const info = DTYPES[code];
  if (!info) throw r.fail(`unknown dtype code ${code}`);
  if (ndim > MAX_NDIM) throw r.fail(`ndim ${ndim} exceeds ${MAX_NDIM}`);
  const raw = r.take(8 * ndim, 'array shape');
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const big = [];
  for (let k = 0; k < ndim; k++) big.push(dv.getBigUint64(8 * k, true));
  if (big.some((d) => d > BigInt(MAX_DIM))) throw r.fail(`shape ${shapeString(big)} has a dimension over 2**40`);
  const count = big.reduce((a, b) => a * b, 1n);
  const limit = maxElements ?? DEFAULT_MAX_ELEMENTS;
  if (count > BigInt(limit)) {
    throw r.fail(`shape ${shapeString(big)} has ${count} elements, more than the limit ${limit}`);
  }
  const shape = big.map(Number);
  if (expect) {
    if (expect.shape && !sameShape(shape, expect.shape)) {
      throw r.fail(`shape ${shapeString(shape)} differs from the expected ${shapeString(expect.shape)}`);
    }
    if (expect.dtype && info.dtype !== expect.dtype) {
      throw r.fail(`dtype ${info.dtype} differs from the expected ${expect.dtype}`);
    }
  }
  return { ...info, shape, count: Number(count) };
}

function decodeRaw(bytes, name, file, maxElements, expect) {
  const r = new Cursor(bytes, name, 'raw', file);
  const h = readArrayHeader(r, maxElements, expect);
  const expected = h.count * h.size;
  if (r.remaining !== expected) {
    throw r.fail(`payload holds ${r.remaining} data bytes, shape ${shapeString(h.shape)} of ${h.dtype} needs ${expected}`);
  }
  return { dtype: h.dtype, shape: h.shape, data: typedView(r.take(expected, 'data'), h.ctor, h.count) };
}

/**
 * Inflate a zlib stream (RFC 1950) with `DecompressionStream('deflate')`, never holding more
 * than `limit(outputSoFar)` bytes: the limit is recomputed from the array header as soon as it
 * has been inflated, so a forged stream cannot make this allocate more than its header allows.
 */
async function inflateBounded(bytes, r, limitOf) {
  if (typeof DecompressionStream === 'undefined') throw r.fail('DecompressionStream is not available here');
  const ds = new DecompressionStream('deflate');
  const writer = ds.writable.getWriter();
  writer.write(bytes).catch(() => {});
  writer.close().catch(() => {});
  const reader = ds.readable.getReader();
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.length;
      const limit = limitOf(chunks, total);
      if (total > limit) {
        reader.cancel().catch(() => {});
        throw r.fail(`deflate stream does not end after ${limit - r.headerBytes} data bytes`);
      }
    }
  } catch (e) {
    if (e instanceof SpkError) throw e;
    throw r.fail(`corrupt deflate stream (${e?.message ?? e})`);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

async function decodeDeflate(bytes, name, file, maxElements, expect) {
  const r = new Cursor(bytes, name, 'deflate', file);
  let header = null;
  r.headerBytes = 0;
  const limitOf = (chunks, total) => {
    if (header) return r.headerBytes + header.count * header.size;
    const head = concatPrefix(chunks, Math.min(total, 8 + 8 * MAX_NDIM));
    if (head.length < 8) return Infinity;
    const ndim = head[1];
    if (ndim > MAX_NDIM) throw r.fail(`ndim ${ndim} exceeds ${MAX_NDIM}`);
    if (head.length < 8 + 8 * ndim) return Infinity;
    const hr = new Cursor(head.subarray(0, 8 + 8 * ndim), name, 'deflate', file);
    header = readArrayHeader(hr, maxElements, expect);
    r.headerBytes = 8 + 8 * ndim;
    return r.headerBytes + header.count * header.size;
  };
  const raw = await inflateBounded(bytes, r, limitOf);
  if (!header) {
    limitOf([raw], raw.length);
    if (!header) throw r.fail(`deflate stream ends early in ${raw.length < 8 ? 'array header' : 'array shape'}`);
  }
  const expected = header.count * header.size;
  if (raw.length < r.headerBytes + expected) throw r.fail('deflate stream ends early in array data');
  const data = typedView(raw.subarray(r.headerBytes), header.ctor, header.count);
  return { dtype: header.dtype, shape: header.shape, data };
}

function concatPrefix(chunks, n) {
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    if (o >= n) break;
    const k = Math.min(c.length, n - o);
    out.set(c.subarray(0, k), o);
    o += k;
  }
  return out;
}

function decodeAns(bytes, name, file, maxElements, expect) {
  const r = new Cursor(bytes, name, 'ans', file);
  const h = readArrayHeader(r, maxElements, expect);
  return { dtype: h.dtype, shape: h.shape, data: decodeAnsBody(r, h) };
}

/**
 * Decode one section payload.
 *
 * @param {Uint8Array} payload the section's bytes
 * @param {string} codec the section's codec
 * @param {{name?: string, file?: string, maxElements?: number, shape?: number[], dtype?: string}} [options]
 *   `name` / `file` name the array and the file in errors; `maxElements` bounds the element
 *   count (default 2^28); `shape` / `dtype`, when given, must equal the payload's.
 * @returns {Promise<{dtype: string, shape: number[], data: ArrayLike<number>}>}
 */
export async function decodeArray(payload, codec, { name = 'array', file, maxElements, shape, dtype } = {}) {
  const expect = shape || dtype ? { shape, dtype } : null;
  switch (codec) {
    case 'raw':
      return decodeRaw(payload, name, file, maxElements, expect);
    case 'deflate':
      return decodeDeflate(payload, name, file, maxElements, expect);
    case 'ans':
      return decodeAns(payload, name, file, maxElements, expect);
    default:
      if (IMAGE_CODECS.includes(codec)) {
        const r = new Cursor(payload, name, codec, file);
        const h = readArrayHeader(r, maxElements, expect);
        return decodeImage(r, h);
      }
      throw new SpkError(`array '${name}': unknown codec '${codec}' (known: ${[...CODECS].sort().join(', ')})`, file);
  }
}

const HALF_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

/** IEEE half-precision bit patterns → Float32Array (exact: every half is a float32). */
export function halfToFloat(bits) {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = HALF_TABLE[bits[i]];
  return out;
}

/** Elements of a decoded array as a Float32Array (f16 bit patterns converted). */
export function toFloat32(arr) {
  if (arr.dtype === 'f16') return halfToFloat(arr.data);
  if (arr.data instanceof Float32Array) return arr.data;
  return Float32Array.from(arr.data, Number);
}
