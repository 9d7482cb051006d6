/**
 * A `.spk` scene as the arrays a renderer needs: {@link decodeSpk} detects the scene kind from
 * `meta.kind` (like `splatpack.codecs.read_scene`) and decodes a compact scene (§5,
 * compact.js) or a grid scene (§6, grid.js); {@link decodeSections} decodes every section as a
 * plain array (test vectors, debugging).
 */

import { decodeArray } from './codecs.js';
import { COMPACT_KIND, decodeCompact } from './compact.js';
import { SpkFile } from './container.js';
import { SpkError } from './errors.js';
import { decodeGrid, GRID_KIND } from './grid.js';

/**
 * A decoded scene. Gaussians are in file order (Morton order for compact scenes, the grid's
 * raster order for grid scenes), like Python's decoders.
 *
 * @typedef {object} SpkScene
 * @property {'compact'|'grid'} kind
 * @property {number} numGaussians N
 * @property {object} meta the file's meta JSON
 * @property {Float32Array} means [N, 3] world positions
 * @property {Float32Array} scales [N, 3] linear scales (exp of the log-scales), world units
 * @property {Float32Array} quats [N, 4] rotations (w, x, y, z), normalised
 * @property {Float32Array} opacities [N] α in 0..1 (after the sigmoid)
 * @property {number} shDegree 0..3
 * @property {Float32Array|null} sh0 [N, 3] DC SH coefficients, colour = 0.5 + 0.28209479177387814·sh0;
 *   null for a compact scene with a colour field (use `colourField`)
 * @property {Float32Array|null} shRest [N, K, 3] (K = (shDegree + 1)² − 1; coefficient k, channel c
 *   of Gaussian i at (i·K + k)·3 + c), null when K = 0 or for a colour field
 * @property {{colours(cameraPosition: number[]): Float32Array}|null} colourField compact scenes
 *   with a field: RGB in [0, ∞) per Gaussian [N, 3] for a camera centred at `cameraPosition`
 *   (Python's `field_colors` then max(0, ½ + C₀·f)); null otherwise
 * @property {Object<string, number>} sectionTimings milliseconds spent decoding each section (by
 *   name), plus `assemble` for turning the arrays into the scene
 */

/**
 * The geometry of a scene whose colours are still being decoded (same arrays as the final
 * {@link SpkScene}'s, which reuses them).
 *
 * @typedef {object} SpkPartial
 * @property {'compact'|'grid'} kind
 * @property {number} numGaussians
 * @property {object} meta
 * @property {Float32Array} means
 * @property {Float32Array} scales
 * @property {Float32Array} quats
 * @property {Float32Array} opacities
 * @property {Float32Array|null} sh0 DC colours when already decoded (grid scenes), else null
 */

/**
 * Decode a whole `.spk` scene.
 *
 * @param {ArrayBuffer|ArrayBufferView} arrayBuffer the file's bytes
 * @param {{onProgress?: (p: {section: string|null, done: number, total: number}) => void,
 *   onPartial?: (p: SpkPartial) => (void|Promise<void>), name?: string}} [options]
 *   `onProgress` is called after each decoded section (`done` of `total` sections) and once at
 *   the end with `section: null`; `onPartial` once the geometry is decoded, before the colour
 *   sections (a compact scene's colour field or SH, a grid scene's SH rest: the slow part), so a
 *   viewer can show the Gaussians early; a promise it returns is awaited before decoding goes on
 *   (e.g. to let a frame be drawn). `name` names the file in error messages.
 * @returns {Promise<SpkScene>}
 * @throws {SpkError} for any problem with the file (one line, naming it)
 */
export async function decodeSpk(arrayBuffer, { onProgress, onPartial, name = 'file' } = {}) {
  const spk = SpkFile.open(arrayBuffer, { name });
  const kind = spk.meta.kind;
  const timings = {};
  const total = spk.sections.filter((s) => s.name !== 'views').length;
  let done = 0;
  const section = async (secName, opts) => {
    const t0 = performance.now();
    const e = spk.info(secName);
    const arr = await decodeArray(spk.read(secName), e.codec, { ...opts, name: secName, file: spk.name });
    timings[secName] = performance.now() - t0;
    done += 1;
    onProgress?.({ section: secName, done, total });
    return arr;
  };
  let scene;
  let partialMs = 0; // time spent in onPartial, not the decoder's
  const partial = (sceneKind) =>
    onPartial &&
    (async (g) => {
      const t = performance.now();
      await onPartial({ kind: sceneKind, numGaussians: spk.numGaussians, meta: spk.meta, sh0: null, ...g });
      partialMs += performance.now() - t;
    });
  const t0 = performance.now();
  if (kind === COMPACT_KIND) scene = await decodeCompact(spk, section, partial('compact'));
  else if (kind === GRID_KIND) scene = await decodeGrid(spk, section, partial('grid'));
  else throw new SpkError(`unknown .spk scene kind ${JSON.stringify(kind ?? null)}`, spk.name);
  const sectionTime = Object.values(timings).reduce((a, b) => a + b, 0);
  timings.assemble = performance.now() - t0 - sectionTime - partialMs;
  onProgress?.({ section: null, done: total, total });
  return { ...scene, sectionTimings: timings };
}

/**
 * Every readable section decoded as a plain array, `{name: {dtype, shape, data}}` (see
 * codecs.js for the dtypes and data types).
 * @param {ArrayBuffer|ArrayBufferView} arrayBuffer
 * @param {{name?: string}} [options]
 */
export async function decodeSections(arrayBuffer, { name = 'file' } = {}) {
  const spk = SpkFile.open(arrayBuffer, { name });
  const out = {};
  for (const e of spk.sections) {
    out[e.name] = await decodeArray(spk.read(e.name), e.codec, { name: e.name, file: spk.name });
  }
  return out;
}
