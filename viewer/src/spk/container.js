/**
 * The `.spk` container: header, meta and section table parsed and validated on open; payloads
 * checked (CRC-32 and the zero padding after them) only when a section is read.
 *
 * A JavaScript port of `splatpack/spk/container.py` (`SpkReader`), written from
 * docs/spk-format.md §1 (layout) and §2 (reading and validation): every check listed in §2 is
 * made, in the same order, with the same messages, so a file Python refuses is refused here.
 * All sizes are bounded by the file size before anything is allocated from them (a forged
 * count of 2^32 − 1 sections allocates nothing).
 */

import { crc32 } from './crc32.js';
import { SpkError } from './errors.js';

export const MAGIC = [0x89, 0x53, 0x50, 0x4b]; // "\x89SPK"
export const FORMAT_VERSION = [1, 0];
export const HEADER_SIZE = 36;
export const MIN_ENTRY_SIZE = 25; // one-character name and codec (§1.3)
export const ALIGN = 8;
export const GAUSSIANS_PER_BYTE = 8;
export const FLAG_REQUIRED = 1;
/** Codecs this decoder reads (docs/spk-format.md §3); the same set as Python's `CODECS`. */
export const KNOWN_CODECS = new Set(['raw', 'deflate', 'ans', 'jxl', 'png', 'webp']);

const NAME_RE = /^[A-Za-z0-9_.:/-]{1,64}$/;
const CODEC_RE = /^[a-z0-9_.-]{1,32}$/;
const ENTRY_TAIL = 21; // u8 flags, u64 offset, u64 length, u32 crc32

/**
 * A section table entry (§1.3).
 * @typedef {{name: string, codec: string, offset: number, length: number, crc32: number, required: boolean}} SectionInfo
 */

/** `bytes` as a Uint8Array view (an ArrayBuffer, a typed array or a DataView). */
export function asBytes(data) {
  // a plain Uint8Array even for a Node Buffer (whose slice() shares memory instead of copying)
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && data instanceof SharedArrayBuffer)) {
    return new Uint8Array(data);
  }
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('expected an ArrayBuffer or a typed array');
}

function latin1(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

function pyRepr(s) {
  // Python's repr() of a short str, enough for error messages: 'name'
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function firstNonZero(bytes, start, end) {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return i;
  return -1;
}

/**
 * An open `.spk` file held in memory. {@link SpkFile.open} validates the header, meta and table
 * (§2 items 1–10); {@link SpkFile#read} returns a payload after checking its CRC and padding.
 */
export class SpkFile {
  /**
   * @param {ArrayBuffer|ArrayBufferView} data the whole file
   * @param {{name?: string, knownCodecs?: Set<string>|null}} [options] `name` names the file in
   *   error messages; `knownCodecs` (default {@link KNOWN_CODECS}; null accepts every codec):
   *   optional sections with another codec are listed in `skipped`, required ones refused (§2.9).
   * @returns {SpkFile}
   */
  static open(data, { name = 'file', knownCodecs = KNOWN_CODECS } = {}) {
    return new SpkFile(asBytes(data), name, knownCodecs);
  }

  /** @private */
  constructor(bytes, name, knownCodecs) {
    this.bytes = bytes;
    this.name = name;
    this.fileSize = bytes.length;
    /** @type {Map<string, boolean>} sections whose payload has been verified */
    this._verified = new Map();
    this._open(knownCodecs);
  }

  /** An {@link SpkError} naming this file. */
  fail(problem) {
    return new SpkError(problem, this.name);
  }

  _open(knownCodecs) {
    const b = this.bytes;
    const size = b.length;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    // §2.1 magic
    if (size < 4 || MAGIC.some((m, i) => b[i] !== m)) {
      throw this.fail(`not a .spk file (${size === 0 ? 'empty file' : 'bad magic'})`);
    }
    // §2.2 major version, before anything else
    if (size >= 8) {
      const major = dv.getUint16(4, true);
      const minor = dv.getUint16(6, true);
      if (major !== FORMAT_VERSION[0]) {
        throw this.fail(
          `unsupported .spk format version ${major}.${minor} (this reader reads ${FORMAT_VERSION[0]}.x; ` +
            'a newer splatpack viewer may read it)',
        );
      }
    }
    // §2.3 truncated header
    if (size < HEADER_SIZE) {
      throw this.fail(`truncated header (${size} bytes, a .spk header has ${HEADER_SIZE})`);
    }
    const major = dv.getUint16(4, true);
    const minor = dv.getUint16(6, true);
    const flags = dv.getUint32(8, true);
    const metaLen = dv.getUint32(12, true);
    const numG = dv.getBigUint64(16, true);
    const numSec = dv.getUint32(24, true);
    const tableLen = dv.getUint32(28, true);
    const headerCrc = dv.getUint32(32, true);
    this.version = [major, minor];
    this.flags = flags;
    const tableStart = HEADER_SIZE + metaLen;
    const tableEnd = tableStart + tableLen; // < 2^33: exact
    if (tableEnd > size) {
      throw this.fail(
        `truncated header: meta (${metaLen} bytes) and section table (${tableLen} bytes) ` +
          `extend past the end of the file (${size} bytes)`,
      );
    }
    // §2.4 more sections than the table can hold
    if (numSec * MIN_ENTRY_SIZE > tableLen) {
      throw this.fail(`${numSec} sections cannot fit in a ${tableLen}-byte section table`);
    }
    // §2.5 header checksum
    const crc = crc32(b.subarray(HEADER_SIZE, tableEnd), crc32(b.subarray(0, 32)));
    if (crc !== headerCrc) throw this.fail('header is corrupt (checksum mismatch)');
    // §2.6 implausible Gaussian count
    if (numG > BigInt(GAUSSIANS_PER_BYTE) * BigInt(size)) {
      throw this.fail(
        `num_gaussians ${numG} is implausible for a ${size}-byte file (at most ${GAUSSIANS_PER_BYTE} per byte)`,
      );
    }
    this.numGaussians = Number(numG);
    // §2.7 meta
    let meta;
    try {
      meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(HEADER_SIZE, tableStart)));
    } catch (e) {
      throw this.fail(`meta is not valid UTF-8 JSON (${e instanceof SyntaxError ? 'JSONDecodeError' : 'UnicodeDecodeError'})`);
    }
    if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
      const kind = meta === null ? 'null' : Array.isArray(meta) ? 'list' : typeof meta;
      throw this.fail(`meta is a JSON ${kind}, not an object`);
    }
    /** @type {object} */
    this.meta = meta;
    // §2.8 table
    const entries = this._parseTable(b.subarray(tableStart, tableEnd), numSec, tableEnd);
    /** @type {SectionInfo[]} */
    this.sections = [];
    /** @type {SectionInfo[]} optional sections with a codec this reader does not know */
    this.skipped = [];
    this._gapEnd = new Map();
    entries.forEach((e, i) => {
      this._gapEnd.set(e.name, i + 1 < entries.length ? entries[i + 1].offset : size);
      // §2.9 unknown codecs
      if (knownCodecs && !knownCodecs.has(e.codec)) {
        if (e.required) {
          throw this.fail(
            `required section '${e.name}' uses codec '${e.codec}' unknown to this reader (written by a newer version?)`,
          );
        }
        this.skipped.push(e);
      } else {
        this.sections.push(e);
      }
    });
    this._byName = new Map(this.sections.map((e) => [e.name, e]));
    this._skippedByName = new Map(this.skipped.map((e) => [e.name, e]));
    // §2.10 padding between the table and the first payload
    const first = entries.length ? entries[0].offset : size;
    if (firstNonZero(b, tableEnd, first) >= 0) throw this.fail('padding after the section table is not zero (corrupt)');
  }

  _parseTable(table, numSec, tableEnd) {
    const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
    let pos = 0;
    const entries = [];
    const names = new Set();
    let prevEnd = BigInt(tableEnd);
    let prevName = null;
    for (let i = 0; i < numSec; i++) {
      const truncated = () => this.fail(`section table truncated in entry ${i}`);
      if (pos >= table.length) throw truncated();
      const nameLen = table[pos];
      if (pos + 1 + nameLen > table.length) throw truncated();
      const name = latin1(table.subarray(pos + 1, pos + 1 + nameLen));
      pos += 1 + nameLen;
      if (pos >= table.length) throw truncated();
      const codecLen = table[pos];
      if (pos + 1 + codecLen > table.length) throw truncated();
      const codec = latin1(table.subarray(pos + 1, pos + 1 + codecLen));
      pos += 1 + codecLen;
      if (pos + ENTRY_TAIL > table.length) throw truncated();
      const flags = table[pos];
      const offset = dv.getBigUint64(pos + 1, true);
      const length = dv.getBigUint64(pos + 9, true);
      const crc = dv.getUint32(pos + 17, true);
      pos += ENTRY_TAIL;
      if (!NAME_RE.test(name)) throw this.fail(`section table entry ${i} has an invalid name ${pyRepr(name)}`);
      if (!CODEC_RE.test(codec)) throw this.fail(`section '${name}' has an invalid codec name ${pyRepr(codec)}`);
      if (names.has(name)) throw this.fail(`duplicate section '${name}'`);
      names.add(name);
      if (offset % BigInt(ALIGN)) throw this.fail(`section '${name}' offset ${offset} is not a multiple of ${ALIGN}`);
      if (offset < prevEnd) {
        const where = prevName === null ? 'the section table' : `section '${prevName}'`;
        throw this.fail(`section '${name}' overlaps ${where}`);
      }
      const end = offset + length;
      if (end > BigInt(this.fileSize)) {
        // checked here rather than after the table (as Python does) so that offsets fit a number
        throw this.fail(
          `section '${name}' extends past the end of the file (bytes ${offset}..${end} of ${this.fileSize}; truncated?)`,
        );
      }
      entries.push({
        name,
        codec,
        offset: Number(offset),
        length: Number(length),
        crc32: crc,
        required: Boolean(flags & FLAG_REQUIRED),
      });
      prevEnd = end;
      prevName = name;
    }
    if (pos !== table.length) throw this.fail(`section table has ${table.length - pos} unexpected trailing bytes`);
    return entries;
  }

  /** Whether a readable section `name` exists (skipped sections do not count). */
  has(name) {
    return this._byName.has(name);
  }

  /** The table entry of a readable section. @returns {SectionInfo} */
  info(name) {
    const e = this._byName.get(name);
    if (e) return e;
    const s = this._skippedByName.get(name);
    if (s) throw this.fail(`section '${name}' uses codec '${s.codec}' unknown to this reader (skipped)`);
    const have = this.sections.map((x) => x.name).join(', ') || 'none';
    throw this.fail(`no section '${name}' (sections: ${have})`);
  }

  /**
   * The payload of section `name` (a view into the file, 8-byte aligned relative to the file
   * start), after checking its CRC-32 and that the padding after it is zero (§2, "When a section
   * is read"). The check runs once per section.
   * @returns {Uint8Array}
   */
  read(name) {
    const e = this.info(name);
    const payload = this.bytes.subarray(e.offset, e.offset + e.length);
    if (!this._verified.get(name)) {
      if (crc32(payload) !== e.crc32) throw this.fail(`section '${name}' is corrupt (checksum mismatch)`);
      if (firstNonZero(this.bytes, e.offset + e.length, this._gapEnd.get(name)) >= 0) {
        throw this.fail(`padding after section '${name}' is not zero (corrupt)`);
      }
      this._verified.set(name, true);
    }
    return payload;
  }
}
