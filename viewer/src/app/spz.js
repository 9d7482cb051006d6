// SPZ version 4 -> version 3, so Spark (which reads the gzip container of SPZ v1-v3) can open
// the zstd container that current SPZ writers (Niantic's library, gsply, `splatpack export`)
// produce.
//
// Both versions hold the same attribute sections in the same order and encoding (positions,
// alphas, colours, scales, smallest-three rotations, SH). v3 is one gzip stream of a 16-byte
// header plus the sections; v4 is a plain 32-byte header (magic, version, N, SH degree,
// fractional bits, flags, stream count, table-of-contents offset), optional extension records,
// a table of (compressed, uncompressed) u64 sizes and one zstd stream per non-empty section.
// Every size is checked against what the header implies before anything is allocated.
import { gzipSync } from "fflate";
import { decompress as zstdDecompress } from "fzstd";

const MAGIC = 0x5053474e; // "NGSP"
const V4_HEADER_BYTES = 32;
const TOC_ENTRY_BYTES = 16;

/** True for an SPZ v4 file (plain "NGSP" magic, version 4). */
export function isSpzV4(bytes) {
  if (bytes.length < 8) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return v.getUint32(0, true) === MAGIC && v.getUint32(4, true) === 4;
}

/** Section byte sizes of N Gaussians (v3/v4 layout). */
function sectionSizes(n, shDegree) {
  const shCoeffs = [0, 3, 8, 15][shDegree];
  return [9 * n, n, 3 * n, 3 * n, 4 * n, 3 * shCoeffs * n];
}

/**
 * Rewrap an SPZ v4 file as SPZ v3 (gzip, fastest level).
 * @param {Uint8Array} bytes
 * @param {string} name for messages
 */
export function spzV4ToV3(bytes, name = "file.spz") {
  const fail = (problem) => {
    throw new Error(`${name}: ${problem}`);
  };
  if (bytes.length < V4_HEADER_BYTES) fail("SPZ file too short for its 32-byte header");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = v.getUint32(8, true);
  const shDegree = v.getUint8(12);
  const fractionalBits = v.getUint8(13);
  const flags = v.getUint8(14);
  const numStreams = v.getUint8(15);
  const tocOffset = v.getUint32(16, true);
  if (shDegree > 3) fail(`SPZ SH degree ${shDegree} is not 0..3`);
  const sizes = sectionSizes(n, shDegree).filter((s) => s > 0);
  if (numStreams !== sizes.length) fail(`SPZ v4 has ${numStreams} streams, expected ${sizes.length}`);
  const tocEnd = tocOffset + TOC_ENTRY_BYTES * numStreams;
  if (tocOffset < V4_HEADER_BYTES || tocEnd > bytes.length) fail("SPZ v4 table of contents lies outside the file");
  const total = sizes.reduce((a, b) => a + b, 0);
  const body = new Uint8Array(16 + total);
  const out = new DataView(body.buffer);
  out.setUint32(0, MAGIC, true);
  out.setUint32(4, 3, true);
  out.setUint32(8, n, true);
  out.setUint8(12, shDegree);
  out.setUint8(13, fractionalBits);
  out.setUint8(14, flags & 0x1); // keep "antialiased"; v4 extensions are not carried over
  out.setUint8(15, 0);
  let offset = tocEnd;
  let at = 16;
  for (let i = 0; i < numStreams; i++) {
    const csize = Number(v.getBigUint64(tocOffset + i * TOC_ENTRY_BYTES, true));
    const usize = Number(v.getBigUint64(tocOffset + i * TOC_ENTRY_BYTES + 8, true));
    if (usize !== sizes[i]) fail(`SPZ v4 stream ${i} claims ${usize} bytes, the header implies ${sizes[i]}`);
    if (csize > bytes.length - offset) fail(`SPZ v4 stream ${i} runs past the end of the file (truncated?)`);
    const part = zstdDecompress(bytes.subarray(offset, offset + csize));
    if (part.length !== usize) fail(`SPZ v4 stream ${i} decompressed to ${part.length} bytes, expected ${usize}`);
    body.set(part, at);
    offset += csize;
    at += usize;
  }
  return gzipSync(body, { level: 1 });
}
