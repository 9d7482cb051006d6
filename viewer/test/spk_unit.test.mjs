/**
 * Unit tests of the `.spk` decoder's building blocks that the Python comparison
 * (tests/test_viewer_decode.py) does not reach on its own; run with `node --test viewer/test/`.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decodeArray } from '../src/spk/codecs.js';
import { fieldConfig, gridLevels, makeColourField } from '../src/spk/colour_field.js';
import { SpkFile } from '../src/spk/container.js';
import { crc32 } from '../src/spk/crc32.js';
import { SpkError } from '../src/spk/errors.js';
import { jxlHeader } from '../src/spk/images.js';

test('crc32 is zlib.crc32', () => {
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  const long = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);
  assert.equal(crc32(long.subarray(300), crc32(long.subarray(0, 300))), crc32(long));
});

test('grid levels follow tiny-cuda-nn (dense then hashed levels; values from hash_grid.grid_levels)', () => {
  const levels = gridLevels({ n_levels: 4, n_features_per_level: 2, log2_hashmap_size: 10, base_resolution: 4, per_level_scale: 2 });
  assert.deepEqual(
    levels.map((l) => [l.offset, l.size, l.resolution, l.dense]),
    [
      [0, 64, 4, true],
      [64, 512, 8, true],
      [576, 1024, 16, false],
      [1600, 1024, 32, false],
    ],
  );
});

function randomField(seed, n) {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const colour = {
    config: { grid: { n_levels: 3, n_features_per_level: 2, log2_hashmap_size: 8, base_resolution: 3, per_level_scale: 1.8 }, dir_sh_degree: 3 },
    aabb: [
      [-1, -1, -1],
      [1, 2, 1],
    ],
  };
  const cfg = fieldConfig(colour, 'test');
  const total = cfg.levels.reduce((a, l) => a + l.size, 0) * 2;
  const table = Float32Array.from({ length: total }, rnd);
  const dims = [3 * 2 + 16, 8, 8, 3];
  const layers = dims.slice(1).map((out, k) => ({
    weight: Float32Array.from({ length: out * dims[k] }, rnd),
    bias: Float32Array.from({ length: out }, rnd),
    out,
    in: dims[k],
  }));
  const means = Float32Array.from({ length: 3 * n }, () => 2 * rnd());
  return { cfg, table, layers, means };
}

test('colours do not depend on folding the grid into the first layer', () => {
  const { cfg, table, layers, means } = randomField(7, 37); // 37: a short last block of 4
  const a = makeColourField(means, cfg, table, layers).colours([0.5, -3, 2]);
  const b = makeColourField(means, cfg, table, layers, { foldLimit: 0 }).colours([0.5, -3, 2]);
  assert.equal(a.length, 3 * 37);
  assert.ok(a.some((v) => v > 0.6) && a.some((v) => v < 0.4), 'colours vary');
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `${i}: ${a[i]} vs ${b[i]}`);
  assert.ok(a.every((v) => v >= 0));
});

test('JPEG XL size headers', () => {
  // small (8·(u(5)+1)) height 16, ratio 1 (square) and all_default metadata: 8 bits
  const bits = [1, 1, 0, 0, 0, 0, 1, 0, 0, 1];
  const bytes = new Uint8Array([0xff, 0x0a, 0, 0]);
  bits.forEach((b, i) => (bytes[2 + (i >> 3)] |= b << (i & 7)));
  assert.deepEqual(jxlHeader(bytes), { height: 16, width: 16, bits: 8, float: false, orientation: 1, preview: false, animation: false });
  assert.equal(jxlHeader(new Uint8Array([0xff, 0x0a])), null);
  assert.equal(jxlHeader(new Uint8Array([1, 2, 3])), null);
});

test('forged payloads are refused before allocation', async () => {
  const header = (code, shape) => {
    const b = new Uint8Array(8 + 8 * shape.length);
    b[0] = code;
    b[1] = shape.length;
    const dv = new DataView(b.buffer);
    shape.forEach((d, i) => dv.setBigUint64(8 + 8 * i, BigInt(d), true));
    return b;
  };
  await assert.rejects(decodeArray(header(10, [2 ** 40, 2 ** 40]), 'raw'), SpkError);
  await assert.rejects(decodeArray(header(1, [2 ** 20]), 'ans', { maxElements: 1000 }), /more than the limit 1000/);
  await assert.rejects(decodeArray(header(3, [5000, 5000, 3]), 'png', { maxElements: 1e6 }), /more than the limit/);
  await assert.rejects(decodeArray(header(10, [3]), 'raw'), /needs 12/);
  await assert.rejects(decodeArray(new Uint8Array([1, 2, 3]), 'deflate'), SpkError);
});

test('container errors are one line and name the file', () => {
  for (const data of [new Uint8Array(0), new Uint8Array([0x89, 0x53, 0x50, 0x4b, 2, 0, 0, 0]), new Uint8Array(20)]) {
    assert.throws(
      () => SpkFile.open(data, { name: 'x.spk' }),
      (e) => e instanceof SpkError && e.message.startsWith('x.spk: ') && !e.message.includes('\n'),
    );
  }
});
