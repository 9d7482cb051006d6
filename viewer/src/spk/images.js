/**
 * The image codecs `jxl`, `png`, `webp` of docs/spk-format.md §3.4: an 8- or 16-bit image
 * [H, W] or [H, W, C] (C = 1..4) stored as one image file after the array header.
 *
 * As §3.4 requires, the image's own header (JPEG XL SizeHeader, PNG IHDR, WebP VP8L size) is
 * checked against the (bounded) array header *before* a decoder runs, and shape and dtype are
 * checked again after decoding. Decoders:
 *
 * * `png` — fast-png (8 and 16 bit, pure JavaScript);
 * * `webp` — @jsquash/webp (libwebp in WebAssembly); lossless, RGB or RGBA, channels beyond C
 *   (padding for C < 3) must decode to zero;
 * * `jxl` — jxl-oxide-wasm (a Rust JPEG XL decoder in WebAssembly). It renders to a PNG of 8
 *   bits (codestream depth ≤ 8) or 16 bits (> 8), scaling samples to that range; the codestream's
 *   own bit depth b is parsed here from its ImageMetadata, so that sample v maps back to the
 *   stored integer round(v · (2^b − 1) / (2^8|16 − 1)) — exact for lossless images of every depth
 *   1..16 (the step is at least one output level). Lossy images (Butteraugli distance > 0) are
 *   decoded by a different library than Python's libjxl and may differ from it by one level.
 *   (@jsquash/jxl was not used: its decoder returns 8-bit RGBA only, losing every > 8-bit image.)
 */

import { crc32 } from './crc32.js';
import { loadJxl, loadWebp } from './wasm.js';

export const IMAGE_CODECS = ['jxl', 'png', 'webp'];
const IMAGE_DTYPES = { jxl: ['u8', 'u16'], png: ['u8', 'u16'], webp: ['u8'] };
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const PNG_IEND = [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];
const PNG_COLOUR_TYPE = { 1: 0, 2: 4, 3: 2, 4: 6 };
const JXL_CONTAINER = [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a];
const JXL_RATIOS = [
  [1, 1],
  [12, 10],
  [4, 3],
  [3, 2],
  [16, 9],
  [5, 4],
  [2, 1],
];

function startsWith(bytes, prefix, at = 0) {
  if (bytes.length < at + prefix.length) return false;
  return prefix.every((b, i) => bytes[at + i] === b);
}

function ascii(bytes, start, end) {
  return String.fromCharCode(...bytes.subarray(start, end));
}

/** (H, W, C) of an image shape, or null. */
function geometry(shape) {
  let h, w, c;
  if (shape.length === 2) [h, w, c] = [...shape, 1];
  else if (shape.length === 3) [h, w, c] = shape;
  else return null;
  return h >= 1 && w >= 1 && c >= 1 && c <= 4 ? [h, w, c] : null;
}

// --------------------------------------------------------------------------- JPEG XL headers

/**
 * The start of the codestream: `data` itself when bare (`FF 0A`), else the content of the first
 * `jxlc` (or `jxlp`, minus its 4-byte index) box of the ISOBMFF container; null if neither.
 */
function jxlCodestream(data) {
  if (data[0] === 0xff && data[1] === 0x0a) return data;
  if (!startsWith(data, JXL_CONTAINER)) return null;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = JXL_CONTAINER.length;
  while (pos + 8 <= data.length) {
    let size = dv.getUint32(pos);
    const kind = ascii(data, pos + 4, pos + 8);
    let head = 8;
    if (size === 1) {
      if (pos + 16 > data.length) return null;
      size = Number(dv.getBigUint64(pos + 8));
      head = 16;
    } else if (size === 0) {
      size = data.length - pos;
    }
    if (size < head || pos + size > data.length) return null;
    if (kind === 'jxlc') return data.subarray(pos + head, pos + size);
    if (kind === 'jxlp') return data.subarray(pos + head + 4, pos + size);
    pos += size;
  }
  return null;
}

/** LSB-first bit reader (ISO/IEC 18181-1 §A.3); throws RangeError at the end of the data. */
class Bits {
  constructor(bytes) {
    this.bytes = bytes;
    this.pos = 0;
  }

  u(n) {
    let v = 0;
    for (let k = 0; k < n; k++) {
      const byte = this.pos >> 3;
      if (byte >= this.bytes.length) throw new RangeError('end of data');
      v += ((this.bytes[byte] >> (this.pos & 7)) & 1) * 2 ** k;
      this.pos++;
    }
    return v;
  }

  bool() {
    return this.u(1) === 1;
  }

  /** U32(d0, d1, d2, d3), each distribution `[bits, offset]` (bits 0: the constant offset). */
  u32(dists) {
    const [n, off] = dists[this.u(2)];
    return this.u(n) + off;
  }
}

const SIZE_U32 = [
  [9, 1],
  [13, 1],
  [18, 1],
  [30, 1],
];

function sizeHeader(b) {
  const small = b.bool();
  const ysize = small ? 8 * (b.u(5) + 1) : b.u32(SIZE_U32);
  const ratio = b.u(3);
  let xsize;
  if (ratio === 0) xsize = small ? 8 * (b.u(5) + 1) : b.u32(SIZE_U32);
  else {
    const [num, den] = JXL_RATIOS[ratio - 1];
    xsize = Math.floor((ysize * num) / den);
  }
  return [ysize, xsize];
}

/**
 * Size and sample format from a JPEG XL codestream: its SizeHeader and the start of its
 * ImageMetadata (all_default, extra_fields: orientation, intrinsic size, preview, animation;
 * then BitDepth), ISO/IEC 18181-1 §A.6. Returns null when the data is not a codestream.
 * @returns {{height: number, width: number, bits: number, float: boolean, orientation: number,
 *   preview: boolean, animation: boolean} | null}
 */
export function jxlHeader(data) {
  const cs = jxlCodestream(data);
  if (cs === null || cs[0] !== 0xff || cs[1] !== 0x0a) return null;
  const b = new Bits(cs.subarray(2, 2 + 64));
  try {
    const [height, width] = sizeHeader(b);
    const out = { height, width, bits: 8, float: false, orientation: 1, preview: false, animation: false };
    const allDefault = b.bool();
    if (allDefault) return out;
    const extra = b.bool();
    if (extra) {
      out.orientation = b.u(3) + 1;
      if (b.bool()) sizeHeader(b); // intrinsic size
      out.preview = b.bool();
      if (out.preview) return out; // not parsed further: refused by the caller
      out.animation = b.bool();
      if (out.animation) return out;
    }
    out.float = b.bool();
    out.bits = out.float
      ? b.u32([
          [0, 32],
          [0, 16],
          [0, 24],
          [6, 1],
        ])
      : b.u32([
          [0, 8],
          [0, 10],
          [0, 12],
          [6, 1],
        ]);
    return out;
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
}

// --------------------------------------------------------------------------- header checks

/**
 * Every PNG chunk lies inside the file and has a valid CRC-32 (libpng refuses a bad CRC in a
 * critical chunk; fast-png does not check, so corrupt pixel data would decode silently).
 */
function checkPngChunks(r, data, dv) {
  let pos = 8;
  while (pos < data.length) {
    if (pos + 12 > data.length) throw r.fail('PNG chunk truncated (corrupt)');
    const len = dv.getUint32(pos);
    if (pos + 12 + len > data.length) throw r.fail('PNG chunk extends past the image (corrupt)');
    if (crc32(data.subarray(pos + 4, pos + 8 + len)) !== dv.getUint32(pos + 8 + len)) {
      throw r.fail(`PNG chunk '${ascii(data, pos + 4, pos + 8)}' is corrupt (CRC mismatch)`);
    }
    pos += 12 + len;
  }
}

/** Refuse an image whose own header disagrees with the array header, before decoding it. */
function checkImageHeader(r, data, codec, h, w, c, dtype) {
  let got;
  let extra = null;
  if (codec === 'jxl') {
    const hd = jxlHeader(data);
    if (hd === null) throw r.fail('not a JPEG XL image (no codestream with a valid size header)');
    got = [hd.height, hd.width];
    extra = hd;
  } else if (codec === 'png') {
    const ihdr = startsWith(data, [0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52], 8);
    if (data.length < 33 + PNG_IEND.length || !startsWith(data, PNG_SIGNATURE) || !ihdr) throw r.fail('not a PNG image');
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const width = dv.getUint32(16);
    const height = dv.getUint32(20);
    const depth = data[24];
    const colour = data[25];
    got = [height, width];
    const wantDepth = dtype === 'u8' ? 8 : 16;
    if (depth !== wantDepth || colour !== PNG_COLOUR_TYPE[c]) {
      throw r.fail(
        `PNG bit depth ${depth} / colour type ${colour} does not match the array header (${wantDepth}-bit, ${c} channels)`,
      );
    }
    if (!startsWith(data, PNG_IEND, data.length - PNG_IEND.length)) {
      throw r.fail('PNG image does not end with its IEND chunk (truncated or trailing bytes)');
    }
    checkPngChunks(r, data, dv);
  } else {
    if (data.length < 25 || ascii(data, 0, 4) !== 'RIFF' || ascii(data, 8, 16) !== 'WEBPVP8L' || data[20] !== 0x2f) {
      throw r.fail('not a lossless WebP image (one VP8L chunk expected)');
    }
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const riff = dv.getUint32(4, true);
    const chunk = dv.getUint32(16, true);
    if (riff + 8 !== data.length || 20 + chunk + (chunk & 1) !== data.length) {
      throw r.fail('WebP sizes do not match the payload (truncated or trailing bytes)');
    }
    const bits = dv.getUint32(21, true);
    got = [((bits >>> 14) & 0x3fff) + 1, (bits & 0x3fff) + 1];
  }
  if (got[0] !== h || got[1] !== w) throw r.fail(`image is ${got[0]}x${got[1]}, the array header says ${h}x${w}`);
  return extra;
}

// --------------------------------------------------------------------------- decoders

async function decodePng(data) {
  const { decode } = await import('fast-png');
  const img = decode(data);
  return { width: img.width, height: img.height, depth: img.depth, channels: img.channels, data: img.data };
}

async function decodeWebp(data) {
  const decode = await loadWebp();
  const copy = new Uint8Array(data.length); // the decoder takes an ArrayBuffer of the file alone
  copy.set(data);
  const img = await decode(copy.buffer);
  return { width: img.width, height: img.height, depth: 8, channels: 4, data: img.data };
}

async function decodeJxl(data) {
  const { JxlImage } = await loadJxl();
  const image = new JxlImage();
  let png;
  try {
    image.forceSrgb = false; // keep the stored samples (Firefox would default to true)
    image.feedBytes(data);
    if (!image.tryInit()) throw new Error('truncated image');
    png = image.render().encodeToPng();
  } finally {
    image.free();
  }
  return decodePng(png);
}

/**
 * Decode the image after the array header `h` (the cursor `r` is positioned after it).
 * @returns {Promise<{dtype: string, shape: number[], data: Uint8Array|Uint16Array}>}
 */
export async function decodeImage(r, h) {
  const codec = r.codec;
  if (!IMAGE_DTYPES[codec].includes(h.dtype)) throw r.fail(`dtype ${h.dtype} is not allowed in a ${codec} payload`);
  const g = geometry(h.shape);
  if (g === null) {
    throw r.fail(`shape (${h.shape.join(', ')}) is not an image ([H, W] or [H, W, C], C = 1..4, H, W >= 1)`);
  }
  const [height, width, c] = g;
  const data = r.bytes.subarray(r.pos);
  const jxl = checkImageHeader(r, data, codec, height, width, c, h.dtype);
  if (jxl) {
    if (jxl.float) throw r.fail(`JPEG XL image has ${jxl.bits}-bit floating-point samples, not integers`);
    if (jxl.preview || jxl.animation || jxl.orientation !== 1) {
      throw r.fail('JPEG XL image with a preview, animation or orientation is not supported here');
    }
    const want = h.dtype === 'u8' ? [1, 8] : [9, 16];
    if (jxl.bits < want[0] || jxl.bits > want[1]) {
      throw r.fail(`JPEG XL image has ${jxl.bits} bits per sample, outside ${want[0]}..${want[1]} for a ${h.dtype} array`);
    }
  }
  let img;
  try {
    img = codec === 'png' ? await decodePng(data) : codec === 'webp' ? await decodeWebp(data) : await decodeJxl(data);
  } catch (e) {
    throw r.fail(`corrupt image (${e?.name ?? 'Error'}: ${e?.message ?? e})`);
  }
  const nOut = codec === 'webp' ? 4 : c;
  const depth = codec === 'jxl' ? (jxl.bits > 8 ? 16 : 8) : h.dtype === 'u8' ? 8 : 16;
  if (img.width !== width || img.height !== height || img.channels !== nOut || img.depth !== depth) {
    throw r.fail(
      `image decodes to ${img.height}x${img.width}x${img.channels} (${img.depth}-bit), ` +
        `expected ${height}x${width}x${nOut} (${depth}-bit)`,
    );
  }
  const count = height * width * c;
  const out = h.dtype === 'u8' ? new Uint8Array(count) : new Uint16Array(count);
  const src = img.data;
  if (codec === 'webp') {
    for (let p = 0, o = 0; p < height * width; p++) {
      for (let k = 0; k < c; k++) out[o++] = src[4 * p + k];
      for (let k = c; k < 3; k++) {
        if (src[4 * p + k] !== 0) throw r.fail('WebP padding channels are not zero (corrupt)');
      }
    }
  } else if (codec === 'jxl' && jxl.bits !== depth) {
    // samples were scaled to the output depth: map back to the codestream's integers
    const levels = 2 ** jxl.bits - 1;
    const maxv = 2 ** depth - 1;
    const lut = new Uint16Array(maxv + 1);
    for (let v = 0; v <= maxv; v++) lut[v] = Math.round((v * levels) / maxv);
    for (let i = 0; i < count; i++) out[i] = lut[src[i]];
  } else {
    out.set(src.subarray(0, count));
  }
  return { dtype: h.dtype, shape: h.shape, data: out };
}
