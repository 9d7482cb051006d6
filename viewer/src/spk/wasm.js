/**
 * Loading the WebAssembly image decoders (JPEG XL: jxl-oxide-wasm; WebP: @jsquash/webp) in
 * both places the decoder runs:
 *
 * * **browser** (a Vite build): each package finds its `.wasm` next to its own module with
 *   `new URL('x.wasm', import.meta.url)`, which Vite turns into an emitted asset. In `vite dev`
 *   the two packages must be excluded from dependency pre-bundling
 *   (`optimizeDeps.exclude: ['jxl-oxide-wasm', '@jsquash/webp']`), or that URL breaks;
 * * **Node** (tests, `viewer/test/*.mjs`): `fetch` cannot read `file:` URLs, so the `.wasm`
 *   bytes are read from the installed package with `fs` and compiled here.
 *
 * A host that serves the files elsewhere calls {@link configureWasm} first.
 */

const overrides = {};

/** Whether this runs under Node.js (not a browser or a worker). */
export const IS_NODE = typeof process === 'object' && typeof process.versions?.node === 'string';

/**
 * Where to get a decoder's `.wasm`: `{jxl, webp}`, each a URL (string or `URL`), an
 * `ArrayBuffer`/typed array of the module bytes, or a compiled `WebAssembly.Module`. Must be
 * called before the first image is decoded.
 */
export function configureWasm(options) {
  Object.assign(overrides, options);
}

/** The `.wasm` file `relPath` beside the module that `specifier` resolves to (Node only). */
async function nodeWasmModule(specifier, relPath) {
  const fsModule = 'node:fs/promises'; // a variable, so that a browser bundler leaves it alone
  const { readFile } = await import(/* @vite-ignore */ fsModule);
  const entry = import.meta.resolve(specifier);
  const bytes = await readFile(new URL(relPath, entry));
  return WebAssembly.compile(bytes);
}

/** A compiled module from an override (URL, bytes or module). */
async function moduleFrom(source) {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return WebAssembly.compile(source);
  const res = await fetch(source);
  if (!res.ok) throw new Error(`cannot fetch ${source} (HTTP ${res.status})`);
  return WebAssembly.compile(await res.arrayBuffer());
}

let jxlReady = null;
let webpReady = null;

/**
 * jxl-oxide-wasm, initialised once.
 * @returns {Promise<typeof import('jxl-oxide-wasm')>}
 */
export function loadJxl() {
  jxlReady ??= (async () => {
    const mod = await import('jxl-oxide-wasm');
    if (overrides.jxl) await mod.default({ module_or_path: await moduleFrom(overrides.jxl) });
    else if (IS_NODE) await mod.default({ module_or_path: await nodeWasmModule('jxl-oxide-wasm', './jxl_oxide_wasm_bg.wasm') });
    else await mod.default();
    return mod;
  })();
  jxlReady.catch(() => {
    jxlReady = null;
  });
  return jxlReady;
}

/**
 * @jsquash/webp's decoder, initialised once.
 * @returns {Promise<(data: ArrayBuffer) => Promise<ImageData>>}
 */
export function loadWebp() {
  webpReady ??= (async () => {
    const mod = await import('@jsquash/webp/decode.js');
    if (overrides.webp) await mod.init(await moduleFrom(overrides.webp));
    else if (IS_NODE) await mod.init(await nodeWasmModule('@jsquash/webp', './codec/dec/webp_dec.wasm'));
    return mod.default;
  })();
  webpReady.catch(() => {
    webpReady = null;
  });
  return webpReady;
}
