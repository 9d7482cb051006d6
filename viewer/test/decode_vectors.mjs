#!/usr/bin/env node
/**
 * Decode a `.spk` file with the browser decoder (viewer/src/spk) and write what it decoded, for
 * comparison with the Python decoder (tests/test_viewer_decode.py):
 *
 *     node viewer/test/decode_vectors.mjs FILE.spk OUTDIR [--camera x,y,z ...]
 *
 * OUTDIR/index.json lists every array as {dtype, shape, file}; each array is written to its
 * file as raw little-endian elements (f16 as its bit patterns). Arrays: every section decoded
 * raw (`sections`), the assembled scene (`scene.arrays`: means, scales, quats, opacities, sh0,
 * shRest — those that are not null), and for a scene with a colour field the field colours for
 * each `--camera` centre (`colours`, with the milliseconds each evaluation took).
 *
 * Exit status: 0 on success; 2 with one line `SpkError: <message>` on stderr when the file is
 * refused; anything else is a bug in the decoder.
 */

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { decodeSections, decodeSpk, SpkError } from '../src/spk/index.js';

function usage() {
  process.stderr.write('usage: decode_vectors.mjs FILE.spk OUTDIR [--camera x,y,z ...]\n');
  process.exit(64);
}

async function writeArray(dir, file, data) {
  await writeFile(path.join(dir, file), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

const DTYPE_OF = new Map([
  [Float32Array, 'f32'],
  [Uint8Array, 'u8'],
  [Uint16Array, 'u16'],
  [Uint32Array, 'u32'],
  [Int32Array, 'i32'],
]);

async function main() {
  const args = process.argv.slice(2);
  const cameras = [];
  const positional = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--camera') {
      const c = (args[++i] ?? '').split(',').map(Number);
      if (c.length !== 3 || !c.every(Number.isFinite)) usage();
      cameras.push(c);
    } else positional.push(args[i]);
  }
  if (positional.length !== 2) usage();
  const [file, outDir] = positional;
  const bytes = await readFile(file);
  await mkdir(outDir, { recursive: true });
  const index = { file, sections: {}, scene: null, colours: [] };

  const sections = await decodeSections(bytes, { name: file });
  let k = 0;
  for (const [name, arr] of Object.entries(sections)) {
    const out = `section_${k++}.bin`;
    await writeArray(outDir, out, arr.data);
    index.sections[name] = { dtype: arr.dtype, shape: arr.shape, file: out };
  }

  const t0 = performance.now();
  const scene = await decodeSpk(bytes, { name: file });
  const decodeMs = performance.now() - t0;
  const n = scene.numGaussians;
  const arrays = {};
  const shapes = {
    means: [n, 3],
    scales: [n, 3],
    quats: [n, 4],
    opacities: [n],
    sh0: [n, 3],
    shRest: [n, (scene.shDegree + 1) ** 2 - 1, 3],
  };
  for (const [name, shape] of Object.entries(shapes)) {
    const data = scene[name];
    if (!data) continue;
    const out = `scene_${name}.bin`;
    await writeArray(outDir, out, data);
    arrays[name] = { dtype: DTYPE_OF.get(data.constructor), shape, file: out };
  }
  index.scene = {
    kind: scene.kind,
    numGaussians: n,
    shDegree: scene.shDegree,
    hasColourField: Boolean(scene.colourField),
    decodeMs,
    sectionTimings: scene.sectionTimings,
    arrays,
  };
  if (scene.colourField) {
    for (const [i, cam] of cameras.entries()) {
      const c0 = performance.now();
      const rgb = scene.colourField.colours(cam);
      const ms = performance.now() - c0;
      const out = `colours_${i}.bin`;
      await writeArray(outDir, out, rgb);
      index.colours.push({ camera: cam, dtype: 'f32', shape: [n, 3], file: out, ms });
    }
  }
  await writeFile(path.join(outDir, 'index.json'), JSON.stringify(index, null, 1));
}

main().catch((e) => {
  if (e instanceof SpkError) {
    process.stderr.write(`SpkError: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
