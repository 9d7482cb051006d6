#!/usr/bin/env node
/**
 * Decode each given file with the browser decoder (every section, then the scene) and print one
 * JSON line per file: `{"file", "ok": true}` or `{"file", "ok": false, "error": "SpkError",
 * "message"}`. A thrown error that is not an SpkError is reported with its name (a decoder bug:
 * tests/test_viewer_decode.py asserts there are none for corrupt files).
 *
 *     node viewer/test/check_errors.mjs FILE.spk [FILE.spk ...]
 */

import { readFile } from 'node:fs/promises';

import { decodeSections, decodeSpk, SpkError } from '../src/spk/index.js';

for (const file of process.argv.slice(2)) {
  let line;
  try {
    const bytes = await readFile(file);
    await decodeSections(bytes, { name: file });
    await decodeSpk(bytes, { name: file });
    line = { file, ok: true };
  } catch (e) {
    const error = e instanceof SpkError ? 'SpkError' : (e?.name ?? 'Error');
    line = { file, ok: false, error, message: String(e?.message ?? e), stack: e instanceof SpkError ? undefined : e?.stack };
  }
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
