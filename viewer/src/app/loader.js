// Loading a scene from a URL or a File into a Spark SplatMesh, as progressively as each format
// allows:
//   .splat        fixed-size records: decoded here chunk by chunk and shown while downloading;
//   .ply .spz .sog  streamed into Spark's worker decoder as the bytes arrive (decoding overlaps
//                 the download), shown when the decoder finishes; SPZ v4 (zstd), which Spark
//                 does not read, is downloaded and rewrapped as SPZ v3 first (./spz.js);
//   .spk          downloaded (progress bar; the header's Gaussian count is shown as soon as the
//                 first bytes arrive), then decoded by splatpack's browser decoder section by
//                 section with its progress; as soon as the geometry is decoded the Gaussians
//                 are shown (DC colours of grid scenes, grey for compact ones) while the colour
//                 sections (colour field, SH) decode, then the full scene, packed for Spark
//                 (SH bands 1-3 included).
//
// Meshes shown before the load completes carry `userData.loadPhase = "partial"`; the viewer
// marks the final one "final" and records which phases it drew (Viewer.drawnPhases).
import { SplatMesh } from "@sparkjsdev/spark";
import { detectFormat, sparkFileType, baseName } from "./formats.js";
import { buildPackedSplats, dcToRgb } from "./packing.js";
import { SplatStreamDecoder } from "./splatStream.js";
import { isSpzV4, spzV4ToV3 } from "./spz.js";
import { openSource, readAll } from "./stream.js";
import { decodeSpk } from "../spk/index.js";

/** How often a progressive .splat display is refreshed (ms). */
const PARTIAL_UPDATE_MS = 250;

/**
 * Base colours for Gaussians whose colours are not decoded yet or come from a colour field:
 * grey, with the packed range widened to [0, 1.5] (one entry at 1.5) so that the field's
 * colours (0..inf) keep headroom when written over them.
 */
function placeholderRgb(n) {
  const rgb = new Float32Array(3 * n).fill(0.5);
  if (n) rgb[0] = 1.5;
  return rgb;
}

/**
 * The result of a load.
 * @typedef {object} LoadedScene
 * @property {SplatMesh} mesh
 * @property {Float32Array} means  3N centres, for framing
 * @property {object} info  name, format, bytes, numGaussians, shDegree, timings (ms)
 * @property {object|null} colourField  view-dependent colours of compact .spk scenes
 * @property {object|null} packedSplats  the mesh's PackedSplats when the viewer may recolour it
 */

/** Split the first bytes off a stream to sniff the format; returns {head, stream}. */
async function peek(stream, minBytes = 16) {
  const reader = stream.getReader();
  const chunks = [];
  let size = 0;
  let done = false;
  while (size < minBytes) {
    const r = await reader.read();
    if (r.done) {
      done = true;
      break;
    }
    chunks.push(r.value);
    size += r.value.length;
  }
  const head = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    head.set(c, o);
    o += c.length;
  }
  const rest = new ReadableStream({
    start(controller) {
      if (head.length) controller.enqueue(head);
      if (done) controller.close();
    },
    async pull(controller) {
      const r = await reader.read();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { head, stream: rest };
}

/** Centres of a PackedSplats (for framing scenes Spark decoded). */
function centresOf(packedSplats) {
  const n = packedSplats.numSplats;
  const means = new Float32Array(3 * n);
  packedSplats.forEachSplat((i, c) => {
    means[3 * i] = c.x;
    means[3 * i + 1] = c.y;
    means[3 * i + 2] = c.z;
  });
  return means;
}

/** `num_gaussians` from a .spk header (bytes 16..24), or null. */
function spkCount(head) {
  if (head.length < 24) return null;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(16, true);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : null;
}

/** A short label for whatever decodeSpk reports as progress. */
function describeSpkProgress(p) {
  if (typeof p === "number") return { fraction: p, label: "decoding" };
  if (!p || typeof p !== "object") return { fraction: null, label: "decoding" };
  const name = p.section ?? p.stage ?? p.name ?? "";
  let fraction = null;
  if (Number.isFinite(p.fraction)) fraction = p.fraction;
  else if (Number.isFinite(p.done) && Number.isFinite(p.total) && p.total > 0) fraction = p.done / p.total;
  else if (Number.isFinite(p.loaded) && Number.isFinite(p.total) && p.total > 0) fraction = p.loaded / p.total;
  return { fraction, label: name ? `decoding ${name}` : "decoding" };
}

/**
 * Load a scene.
 * @param {string|File} source URL or File
 * @param {{onProgress?: (fraction: number|null, label: string) => void,
 *          onPartial?: (mesh: SplatMesh, means: Float32Array, numGaussians: number) => (void|Promise<unknown>),
 *          isCancelled?: () => boolean}} hooks
 *   `onPartial` shows a mesh that is still incomplete; for a .spk the promise it returns (e.g.
 *   until a frame showing it is drawn) is awaited before the colours are decoded.
 * @returns {Promise<LoadedScene>}
 */
export async function loadScene(source, hooks = {}) {
  const { onProgress = () => {}, onPartial = () => {}, isCancelled = () => false } = hooks;
  const t0 = performance.now();
  const opened = await openSource(source);
  const name = baseName(opened.name);
  const { head, stream } = await peek(opened.stream);
  const format = detectFormat(name, head);
  const total = opened.total;
  const info = { name, format, bytes: total, numGaussians: 0, shDegree: 0, timings: {} };
  const fmtBytes = (b) => `${(b / 1e6).toFixed(1)} MB`;
  const downloadLabel = (loaded) => `${name}: ${fmtBytes(loaded)}${total ? ` / ${fmtBytes(total)}` : ""}`;

  if (format === "splat") {
    const decoder = new SplatStreamDecoder(total);
    let mesh = null;
    let lastUpdate = 0;
    const bytes = await readAll(stream, total, (_chunk, loaded, tot, buffer) => {
      onProgress(tot ? loaded / tot : null, downloadLabel(loaded));
      const now = performance.now();
      if (isCancelled() || now - lastUpdate < PARTIAL_UPDATE_MS) return;
      lastUpdate = now;
      if (decoder.push(buffer, loaded) === 0) return;
      if (!mesh) {
        mesh = new SplatMesh({ packedSplats: decoder.packedSplats });
        mesh.userData.loadPhase = "partial";
      }
      mesh.updateVersion();
      onPartial(mesh, decoder.decodedMeans(), decoder.count);
    });
    info.timings.downloadMs = performance.now() - t0;
    const t1 = performance.now();
    decoder.push(bytes, bytes.length);
    if (!mesh) mesh = new SplatMesh({ packedSplats: decoder.packedSplats });
    mesh.updateVersion();
    info.bytes = bytes.length;
    info.numGaussians = decoder.count;
    info.timings.decodeMs = performance.now() - t1;
    return { mesh, means: decoder.decodedMeans(), info, colourField: null, packedSplats: decoder.packedSplats };
  }

  if (format === "spk") {
    let announced = false;
    const bytes = await readAll(stream, total, (_chunk, loaded, tot, buffer) => {
      if (!announced && loaded >= 24) {
        const n = spkCount(buffer);
        if (n !== null) info.numGaussians = n;
        announced = true;
      }
      const count = info.numGaussians ? ` (${info.numGaussians.toLocaleString()} Gaussians)` : "";
      onProgress(tot ? loaded / tot : null, downloadLabel(loaded) + count);
    });
    info.bytes = bytes.length;
    info.timings.downloadMs = performance.now() - t0;
    if (isCancelled()) throw new Error("cancelled");
    const t1 = performance.now();
    const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? bytes.buffer
      : bytes.slice().buffer;
    let partial = null; // {mesh, packedSplats, withField}: the geometry shown while colours decode
    const decoded = await decodeSpk(buffer, {
      name,
      onProgress: (p) => {
        const { fraction, label } = describeSpkProgress(p);
        onProgress(fraction, `${name}: ${label}`);
      },
      onPartial: async (g) => {
        if (isCancelled()) return;
        const t = performance.now();
        const withField = !g.sh0 && g.meta?.colour?.kind === "hash-grid-field";
        const rgb = g.sh0 ? dcToRgb(g.sh0) : placeholderRgb(g.numGaussians);
        const { packedSplats, splatEncoding } = buildPackedSplats({ ...g, shDegree: 0, shRest: null }, rgb);
        const mesh = new SplatMesh({ packedSplats, splatEncoding });
        mesh.userData.loadPhase = "partial";
        partial = { mesh, packedSplats, withField };
        info.timings.partialPackMs = performance.now() - t;
        await onPartial(mesh, g.means, g.numGaussians);
        info.timings.partialMs = performance.now() - t0; // from the start of the load until drawn
        info.timings.partialShowMs = performance.now() - t; // packing and showing it, not decoding
      },
    });
    // decoding alone: the time spent showing the partial scene is partialShowMs
    info.timings.decodeMs = performance.now() - t1 - (info.timings.partialShowMs ?? 0);
    if (decoded.sectionTimings) info.timings.sections = decoded.sectionTimings;
    info.numGaussians = decoded.numGaussians;
    info.shDegree = decoded.shDegree ?? 0;
    info.kind = decoded.kind;
    const t2 = performance.now();
    if (!decoded.sh0 && !decoded.colourField) {
      throw new Error(`${name}: the decoder returned neither SH colours nor a colour field`);
    }
    let mesh, packedSplats;
    if (decoded.colourField && partial?.withField) {
      // The partial mesh already holds these Gaussians with the field's placeholder colours:
      // it becomes the scene, recoloured per view.
      ({ mesh, packedSplats } = partial);
    } else {
      // A colour field's colours (0..inf) arrive per view; the packed range leaves them headroom.
      const rgb = decoded.sh0 ? dcToRgb(decoded.sh0) : placeholderRgb(decoded.numGaussians);
      let splatEncoding;
      ({ packedSplats, splatEncoding } = buildPackedSplats(decoded, rgb));
      mesh = new SplatMesh({ packedSplats, splatEncoding });
    }
    info.timings.packMs = performance.now() - t2;
    return { mesh, means: decoded.means, info, colourField: decoded.colourField ?? null, packedSplats };
  }

  let mesh;
  if (format === "spz" && isSpzV4(head)) {
    const bytes = await readAll(stream, total, (_c, loaded, tot) => onProgress(tot ? loaded / tot : null, downloadLabel(loaded)));
    info.bytes = bytes.length;
    info.timings.downloadMs = performance.now() - t0;
    const t1 = performance.now();
    onProgress(null, `${name}: decoding SPZ v4`);
    const fileBytes = spzV4ToV3(bytes, name);
    mesh = new SplatMesh({ fileBytes, fileType: sparkFileType(format), fileName: name });
    await mesh.initialized;
    info.timings.decodeMs = performance.now() - t1;
  } else {
    // .ply, .spz (v1-v3), .sog: Spark decodes them in its worker while the bytes stream in.
    const t1 = performance.now();
    mesh = new SplatMesh({
      stream,
      streamLength: total,
      fileType: sparkFileType(format),
      fileName: name,
      onProgress: (e) => onProgress(e.total ? e.loaded / e.total : null, downloadLabel(e.loaded)),
    });
    await mesh.initialized;
    info.timings.downloadDecodeMs = performance.now() - t1;
  }
  const packedSplats = mesh.packedSplats;
  info.numGaussians = packedSplats.numSplats;
  info.shDegree = packedSplats.getNumSh();
  const means = centresOf(packedSplats);
  if (format === "spz") {
    // SPZ stores right-up-back axes; splatpack (and the other formats) use right-down-front, as
    // splatpack's reader and Niantic's spz_to_ply convert: a half turn about x (y, z negated).
    mesh.quaternion.set(1, 0, 0, 0);
    mesh.updateMatrixWorld(true);
    for (let i = 0; i < means.length; i += 3) {
      means[i + 1] = -means[i + 1];
      means[i + 2] = -means[i + 2];
    }
  }
  return { mesh, means, info, colourField: null, packedSplats: null };
}
