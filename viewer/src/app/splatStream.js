// Progressive decoding of antimatter15 .splat files: records are fixed-size, so every complete
// record that has arrived can be shown while the rest downloads.
//
// Record (32 bytes): position f32 x3, linear scale f32 x3, RGBA u8 x4 (A = opacity),
// rotation u8 x4 as q*128+128 with w first.
import { PackedSplats, utils } from "@sparkjsdev/spark";

const { setPackedSplat } = utils;
export const SPLAT_RECORD_BYTES = 32;

export class SplatStreamDecoder {
  /** @param {number} totalBytes the file size when known (0: grow as records come) */
  constructor(totalBytes) {
    this.expected = totalBytes > 0 ? Math.floor(totalBytes / SPLAT_RECORD_BYTES) : 0;
    this.packedSplats = new PackedSplats({ maxSplats: Math.max(this.expected, 1) });
    this.packedSplats.ensureSplats(Math.max(this.expected, 1));
    this.packedSplats.numSplats = 0;
    this.means = new Float32Array(3 * Math.max(this.expected, 1));
    this.count = 0;
  }

  /** Decode the complete records in bytes[0, loaded). Returns how many are decoded in all. */
  push(bytes, loaded) {
    const end = Math.floor(loaded / SPLAT_RECORD_BYTES);
    if (end <= this.count) return this.count;
    const packed = this.packedSplats.ensureSplats(end);
    if (this.means.length < 3 * end) {
      const grown = new Float32Array(Math.max(3 * end, 2 * this.means.length));
      grown.set(this.means);
      this.means = grown;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, loaded);
    for (let i = this.count; i < end; i++) {
      const o = i * SPLAT_RECORD_BYTES;
      const x = view.getFloat32(o, true), y = view.getFloat32(o + 4, true), z = view.getFloat32(o + 8, true);
      this.means[3 * i] = x;
      this.means[3 * i + 1] = y;
      this.means[3 * i + 2] = z;
      const qw = (bytes[o + 28] - 128) / 128, qx = (bytes[o + 29] - 128) / 128;
      const qy = (bytes[o + 30] - 128) / 128, qz = (bytes[o + 31] - 128) / 128;
      setPackedSplat(
        packed, i, x, y, z,
        view.getFloat32(o + 12, true), view.getFloat32(o + 16, true), view.getFloat32(o + 20, true),
        qx, qy, qz, qw,
        bytes[o + 27] / 255,
        bytes[o + 24] / 255, bytes[o + 25] / 255, bytes[o + 26] / 255,
      );
    }
    this.count = end;
    this.packedSplats.numSplats = end;
    this.packedSplats.needsUpdate = true;
    return end;
  }

  /** Means of the records decoded so far (a view, 3 x count). */
  decodedMeans() {
    return this.means.subarray(0, 3 * this.count);
  }
}
