/**
 * splatpack's `.spk` decoder for the browser and Node (plain ES modules).
 *
 * ```js
 * import { decodeSpk } from './spk/index.js';
 * const scene = await decodeSpk(await (await fetch('scene.spk')).arrayBuffer(), { name: 'scene.spk' });
 * ```
 *
 * Format: docs/spk-format.md. Modules: container.js (§1–2), codecs.js + ans.js + images.js (§3),
 * compact.js + colour_field.js (§5), grid.js (§6), scene.js (the assembled scene).
 */

export { decodeSections, decodeSpk } from './scene.js';
export { SpkError } from './errors.js';
export { SpkFile } from './container.js';
export { decodeArray, halfToFloat } from './codecs.js';
export { configureWasm } from './wasm.js';
