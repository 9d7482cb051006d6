// splatpack viewer entry point: builds the viewer and overlay, opens what the page was given
// (`?url=...`, else the first file of the server's `config.json`, from the camera and on the
// background of its `framing`, which `splatpack view` computes in Python; else waits for a
// drop), and exposes the scripting API `window.splatpack` used by the browser tests:
//
//   load(url[, framing]) / loadFile(File)  -> Promise<stats>, resolved once the whole scene is shown
//   setCamera({c2w, fx, fy, cx, cy, width, height})   exact OpenCV camera, canvas at DPR 1
//   renderOnce()               -> Promise, after a frame sorted for the current camera is drawn
//   snapshot()                 -> PNG data URL of the canvas
//   stats()                    -> {file, format, numGaussians, shDegree, bytes, fps, timings,
//                                  phases (the load phases drawn, "partial" then "final"), ...}
import { baseName } from "./formats.js";
import { loadScene } from "./loader.js";
import { Overlay } from "./ui.js";
import { Viewer } from "./viewer.js";

const viewer = new Viewer(document.getElementById("canvas"));
const overlay = new Overlay();
let current = null; // {source, info, loading, id}
let loadCounter = 0;

function stats() {
  const info = current?.info ?? {};
  return {
    file: info.name ?? null,
    format: info.format ?? null,
    kind: info.kind ?? null,
    numGaussians: info.numGaussians ?? 0,
    shDegree: info.shDegree ?? 0,
    bytes: info.bytes ?? 0,
    timings: info.timings ?? {},
    loading: Boolean(current?.loading),
    error: current?.error ?? null,
    fps: viewer.fps(),
    mode: viewer.controls.mode,
    framing: viewer.home?.source ?? null, // where the start view came from ("cameras", "gaussians")
    phases: viewer.drawnPhases.map((p) => ({ ...p })), // load phases drawn: [{phase, numGaussians}]
  };
}

/**
 * Load a URL or File, replacing the current scene; `current.promise` is the load. `framing`
 * (from config.json) is the start view; without one the viewer frames the scene itself.
 */
function open(source, framing = null) {
  const promise = openScene(source, framing);
  current.promise = promise;
  return promise;
}

async function openScene(source, framing) {
  const id = ++loadCounter;
  const isCancelled = () => id !== loadCounter;
  const name = baseName(typeof source === "string" ? source : source.name);
  current = { id, loading: true, info: { name, numGaussians: 0, timings: {} }, error: null };
  viewer.clear();
  viewer.setFraming(framing);
  overlay.showMessage("");
  overlay.setProgress(0, `${name}: connecting`);
  let framed = false;
  let framedPose = null;
  try {
    const loaded = await loadScene(source, {
      isCancelled,
      onProgress: (fraction, label) => {
        if (!isCancelled()) overlay.setProgress(fraction, label);
      },
      onPartial: (mesh, means, count) => {
        if (isCancelled()) return undefined;
        current.info.numGaussians = count;
        viewer.showMesh(mesh);
        if (!framed) {
          if (!framing) viewer.measure(means);
          viewer.frame();
          framed = true;
          framedPose = viewer.camera.matrixWorld.clone();
        }
        return viewer.whenDrawn(mesh);
      },
    });
    if (isCancelled()) {
      loaded.mesh.dispose();
      return stats();
    }
    // Re-frame on the complete scene unless the user has taken the camera meanwhile.
    const untouched = !framed || viewer.camera.matrixWorld.equals(framedPose);
    viewer.setScene(loaded);
    current.info = loaded.info;
    if (untouched) viewer.frame();
    if (loaded.colourField) await viewer.maybeRecolour(true);
    overlay.hideProgress();
    current.loading = false;
    return stats();
  } catch (err) {
    if (!isCancelled()) {
      current.error = String(err?.message ?? err);
      overlay.hideProgress();
      overlay.showMessage(current.error);
    }
    throw err;
  } finally {
    if (!isCancelled()) current.loading = false;
  }
}

overlay.bindFiles((file) => open(file).catch((e) => console.error(e)));
document.getElementById("mode").addEventListener("click", () => overlay.setMode(viewer.controls.toggle()));
document.getElementById("frame").addEventListener("click", () => viewer.frame());
window.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.code === "KeyF") overlay.setMode(viewer.controls.toggle());
  else if (e.code === "KeyR") viewer.frame();
});

let lastStats = 0;
viewer.onFrame = () => {
  lastStats = performance.now();
  overlay.showStats(stats());
};
// Keep fps and loading state current while idle too.
setInterval(() => {
  if (performance.now() - lastStats > 500) overlay.showStats(stats());
}, 500);

window.splatpack = {
  load: (url, framing = null) => open(String(url), framing),
  loadFile: (file) => open(file),
  setCamera: (cam) => viewer.setCamera(cam),
  renderOnce: (opts) => viewer.renderOnce(opts),
  snapshot: () => viewer.snapshot(),
  stats,
  whenLoaded: () => current?.promise ?? Promise.resolve(stats()),
  viewer,
};

/** What to open on start: ?url=..., else the server's config.json, else nothing. */
async function start() {
  const url = new URLSearchParams(window.location.search).get("url");
  if (url) return open(url);
  let config = null;
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) config = await response.json();
  } catch {
    config = null; // no server config: an empty viewer waiting for a file
  }
  const first = config?.files?.[0];
  if (first?.url) return open(first.url, first.framing ?? null);
  overlay.showMessage("Drop a .spk, .ply, .splat, .spz or .sog file here, or click Open…");
  return null;
}

window.splatpack.ready = start().catch((e) => console.error(e));
