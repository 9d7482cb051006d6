// The viewer: a three.js renderer with a Spark SparkRenderer, one splat scene at a time, the
// camera and its controls, on-demand rendering, and exact scripted views for tests.
//
// Spark's splat settings follow the INRIA 3DGS rasteriser that splatpack trains with (and its
// CPU reference renderer): a 0.3 px^2 dilation of every 2D covariance without opacity
// compensation (`preBlurAmount`, not `blurAmount`) and back-to-front order by view depth rather
// than by distance.
import * as THREE from "three";
import { SparkRenderer } from "@sparkjsdev/spark";
import {
  DEFAULT_FOV, FAR, NEAR, applyFraming, frameSphere, medianOfMeans, parseFraming, projectionFromIntrinsics,
  radiusAround, releaseProjection, setFixedProjection, setOpenCvPose,
} from "./camera.js";
import { ViewControls } from "./controls.js";
import { recolour } from "./packing.js";

/** Camera motion below this (scene units / radians) counts as "at rest". */
const REST_EPS = 1e-6;
/** Recolour a colour-field scene after the camera has rested this long (ms). */
const REST_MS = 200;
/** Longest wait in whenDrawn (ms): a load never stalls long for its partial display. */
const DRAWN_WAIT_MS = 5000;

export class Viewer {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.renderer = new THREE.WebGLRenderer({
      canvas,
      antialias: false,
      alpha: false,
      preserveDrawingBuffer: true,
      powerPreference: "high-performance",
    });
    this.renderer.setClearColor(0x000000, 1);
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x000000);
    this.camera = new THREE.PerspectiveCamera(DEFAULT_FOV, 1, NEAR, FAR);
    this.camera.up.set(0, -1, 0);
    this.camera.position.set(0, 0, -3);
    this.camera.lookAt(0, 0, 0);
    this.spark = new SparkRenderer({
      renderer: this.renderer,
      preBlurAmount: 0.3,
      blurAmount: 0,
      sortRadial: false,
      onDirty: () => this.invalidate(),
    });
    this.scene.add(this.spark);
    this.controls = new ViewControls(this.camera, canvas);
    this.scripted = false; // a test set the camera: controls wait for user input
    this.fixedSize = null; // {width, height} from setCamera
    this.loaded = null; // the current LoadedScene
    this.home = null; // the start view given with the scene (see setFraming), or null
    this.centre = new THREE.Vector3();
    this.radius = 1;
    this.dirty = true;
    this.frameTimes = [];
    this.lastPose = new THREE.Matrix4();
    this.lastMove = performance.now();
    this.recolouredAt = null; // camera position the colour field was last evaluated at
    this.recolourJob = null; // the colour-field evaluation in flight (one at a time)
    this.drawnPhases = []; // load phases of the scenes drawn since the last clear(), see noteDrawn
    this.drawnWaiters = []; // {mesh, resolve} of whenDrawn calls
    this.onFrame = null; // called after each rendered frame

    const wake = () => this.releaseScripted();
    for (const ev of ["pointerdown", "wheel"]) canvas.addEventListener(ev, wake, { capture: true });
    window.addEventListener("keydown", (e) => {
      if (!(e.target instanceof HTMLInputElement)) wake();
    }, { capture: true });
    window.addEventListener("resize", () => this.resize());
    this.resize();
    this.clock = performance.now();
    this.renderer.setAnimationLoop(() => this.tick());
  }

  /** Ask for a redraw on the next animation frame. */
  invalidate() {
    this.dirty = true;
  }

  resize() {
    if (this.fixedSize) return;
    const w = window.innerWidth, h = window.innerHeight;
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.setSize(w, h, false);
    this.canvas.style.width = "";
    this.canvas.style.height = "";
    this.camera.aspect = w / Math.max(h, 1);
    if (!this.camera.userData.fixedProjection) this.camera.updateProjectionMatrix();
    this.invalidate();
  }

  /** Leave scripted mode (after setCamera) when the user starts interacting. */
  releaseScripted() {
    if (!this.scripted) return;
    this.scripted = false;
    this.fixedSize = null;
    const fwd = new THREE.Vector3(0, 0, -1).applyQuaternion(this.camera.quaternion);
    const dist = Math.max(this.camera.position.distanceTo(this.centre), 1e-3);
    this.controls.frame(this.camera.position.clone().addScaledVector(fwd, dist), this.radius);
    releaseProjection(this.camera, this.camera.aspect);
    this.resize();
  }

  tick() {
    const now = performance.now();
    const dt = Math.min((now - this.clock) / 1000, 0.1);
    this.clock = now;
    if (!this.scripted) this.controls.update(dt);
    this.camera.updateMatrixWorld();
    if (!this.camera.matrixWorld.equals(this.lastPose)) {
      const moved = this.lastPose.elements.some((v, i) => Math.abs(v - this.camera.matrixWorld.elements[i]) > REST_EPS);
      this.lastPose.copy(this.camera.matrixWorld);
      if (moved) {
        this.lastMove = now;
        this.dirty = true;
      }
    }
    if (this.loaded?.colourField && now - this.lastMove > REST_MS && !this.recolourJob) {
      this.maybeRecolour().catch((e) => console.error(e));
    }
    // Scripted views (setCamera) are drawn by renderOnce only.
    if (!this.dirty || this.scripted) return;
    this.dirty = false;
    this.renderer.render(this.scene, this.camera);
    this.noteDrawn();
    this.frameTimes.push(now);
    while (this.frameTimes.length && now - this.frameTimes[0] > 1000) this.frameTimes.shift();
    this.onFrame?.();
  }

  /** Frames drawn in the last second (0 when idle: the viewer only draws on change). */
  fps() {
    const now = performance.now();
    return this.frameTimes.filter((t) => now - t <= 1000).length;
  }

  /**
   * Record the load phase of the mesh just drawn (`userData.loadPhase`: "partial" while a load
   * is still decoding, "final" once the scene is complete) when it differs from the last one, as
   * `{phase, numGaussians}` in `drawnPhases`: what the user saw during a load, for the tests.
   */
  noteDrawn() {
    const mesh = this.mesh;
    // Spark draws the splats of its last finished sort: the mesh is on screen once that covers it.
    if (!mesh || !this.spark.display?.mapping?.some((m) => m.node === mesh)) return;
    for (const w of this.drawnWaiters.filter((x) => x.mesh === mesh)) w.resolve(true);
    const phase = mesh.userData.loadPhase;
    if (!phase) return;
    const numGaussians = mesh.packedSplats?.numSplats ?? 0;
    const last = this.drawnPhases[this.drawnPhases.length - 1];
    if (!last || last.phase !== phase) this.drawnPhases.push({ phase, numGaussians });
  }

  /**
   * Resolves (true) once a frame showing `mesh` has been drawn; at once (false) when no frame
   * will be drawn by itself (a scripted camera draws only on renderOnce, hidden pages not at
   * all), and (false) after `timeoutMs` or when the scene is cleared.
   */
  whenDrawn(mesh, timeoutMs = DRAWN_WAIT_MS) {
    if (this.scripted || document.visibilityState === "hidden") return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = { mesh, resolve: null };
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs);
      waiter.resolve = (drawn) => {
        clearTimeout(timer);
        this.drawnWaiters = this.drawnWaiters.filter((w) => w !== waiter);
        resolve(drawn);
      };
      this.drawnWaiters.push(waiter);
      this.invalidate();
    });
  }

  /** Remove the current scene. */
  clear() {
    if (this.mesh) {
      this.scene.remove(this.mesh);
      this.mesh.dispose();
      this.mesh = null;
    }
    this.loaded = null;
    this.recolouredAt = null;
    this.drawnPhases = [];
    for (const w of [...this.drawnWaiters]) w.resolve(false);
    this.invalidate();
  }

  /** Show a mesh (possibly still filling in) without changing the camera. */
  showMesh(mesh) {
    if (this.mesh === mesh) {
      this.invalidate();
      return;
    }
    if (this.mesh) {
      this.scene.remove(this.mesh);
      this.mesh.dispose();
    }
    this.mesh = mesh;
    this.scene.add(mesh);
    this.invalidate();
  }

  /**
   * Adopt the start view `framing` that `splatpack view` computed for the scene (config.json:
   * {centre, eye, up, fov, radius, background, source}), or none (null): the viewer then frames
   * the scene from its means, with -y up, on black.
   */
  setFraming(framing) {
    this.home = framing ? parseFraming(framing) : null;
    const bg = this.home?.background ?? new THREE.Color(0x000000);
    this.scene.background = bg;
    this.renderer.setClearColor(bg, 1);
    if (this.home) {
      this.centre = this.home.centre.clone();
      this.radius = this.home.radius;
    } else {
      this.camera.up.set(0, -1, 0);
      this.camera.fov = DEFAULT_FOV;
      if (!this.camera.userData.fixedProjection) this.camera.updateProjectionMatrix();
    }
    this.invalidate();
  }

  /** Remember the scene's centre (median of means) and size. */
  measure(means) {
    this.centre = medianOfMeans(means);
    this.radius = radiusAround(means, this.centre);
  }

  /**
   * Go to the start view: the given framing, else point the camera at the scene's median from
   * outside its bulk. The orbit controls turn around the look-at point.
   */
  frame() {
    if (this.scripted) return;
    this.camera.aspect = this.canvas.clientWidth / Math.max(this.canvas.clientHeight, 1) || this.camera.aspect;
    if (this.home) applyFraming(this.camera, this.home);
    else frameSphere(this.camera, this.centre, this.radius, this.camera.up.clone());
    this.controls.frame(this.centre, this.radius);
    this.invalidate();
  }

  /** Adopt a fully loaded scene. */
  setScene(loaded) {
    loaded.mesh.userData.loadPhase = "final";
    this.loaded = loaded;
    this.showMesh(loaded.mesh);
    this.recolouredAt = null;
    if (!this.home) this.measure(loaded.means);
  }

  /**
   * Evaluate a compact scene's colour field at the camera position (if it moved since the last
   * evaluation) and write the colours into the packed splats. Evaluations run one at a time, in
   * call order: a call waits for the one in flight, then uses the camera position of that
   * moment, so after `await maybeRecolour()` the colours are those of the current camera even
   * when an evaluation for an older position was running.
   */
  async maybeRecolour(force = false) {
    while (this.recolourJob) await this.recolourJob.catch(() => {});
    const loaded = this.loaded;
    if (!loaded?.colourField || !loaded.packedSplats) return false;
    const pos = this.camera.getWorldPosition(new THREE.Vector3());
    if (!force && this.recolouredAt && this.recolouredAt.distanceTo(pos) < 1e-6) return false;
    const job = (async () => {
      const rgb = await loaded.colourField.colours([pos.x, pos.y, pos.z]);
      if (this.loaded !== loaded) return false;
      recolour(loaded.packedSplats, rgb);
      loaded.mesh.updateVersion();
      this.recolouredAt = pos;
      this.invalidate();
      return true;
    })();
    this.recolourJob = job;
    try {
      return await job;
    } finally {
      if (this.recolourJob === job) this.recolourJob = null;
    }
  }

  /**
   * Set an exact OpenCV camera: canvas width x height CSS pixels at device pixel ratio 1, the
   * projection of fx, fy, cx, cy, pose `c2w` (row-major camera-to-world, x right, y down,
   * z forward). User input afterwards returns to the interactive controls.
   */
  setCamera({ c2w, fx, fy, cx, cy, width, height }) {
    width = Math.round(width);
    height = Math.round(height);
    if (!(width > 0 && height > 0)) throw new Error("setCamera: width and height must be positive");
    this.scripted = true;
    this.controls.halt();
    this.fixedSize = { width, height };
    this.renderer.setPixelRatio(1);
    this.renderer.setSize(width, height, true);
    this.camera.aspect = width / height;
    setOpenCvPose(this.camera, c2w);
    setFixedProjection(this.camera, projectionFromIntrinsics({ fx, fy, cx, cy, width, height }));
    this.lastPose.copy(this.camera.matrixWorld);
    this.invalidate();
  }

  /**
   * Draw the current view once Spark has sorted the splats for it; resolves when the canvas
   * holds that frame (it stays there: preserveDrawingBuffer).
   *
   * Spark generates the splats for a view, reads their depths back from the GPU and sorts them
   * in a worker; a render shows the last finished sort. Here the generation and sort are run
   * for this camera with `SparkRenderer.update` (no drawing, so no frame queues up in front of
   * the read-back), then one frame is drawn. That is repeated until two consecutive frames are
   * identical: right after a camera jump that follows interactive frames, Spark was seen (with
   * SwiftShader, about one run in four) drawing a frame whose splat order did not fit, and the
   * next generate-sort-draw cycle fixing it.
   */
  async renderOnce({ timeoutMs = 120000, maxCycles = 4 } = {}) {
    // A colour-field scene is first recoloured for this camera (waiting for any evaluation in
    // flight), so the frame never shows colours of an earlier view.
    if (this.loaded?.colourField) await this.maybeRecolour();
    const spark = this.spark;
    const gl = this.renderer.getContext();
    const start = performance.now();
    const idle = async () => {
      while (spark.sorting || spark.sortDirty) {
        if (performance.now() - start > timeoutMs) throw new Error("renderOnce: the splat sort did not finish");
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    this.camera.updateMatrixWorld(true);
    this.renderer.getDrawingBufferSize(spark.renderSize);
    const { x: w, y: h } = spark.renderSize;
    let previous = null;
    let cycles = 0;
    for (; cycles < maxCycles; cycles++) {
      for (;;) {
        await idle();
        const before = spark.current;
        await spark.update({ scene: this.scene, camera: this.camera });
        await idle();
        // update() skips generating while a sort with another splat mapping is in flight.
        if (spark.current !== before && spark.display === spark.current) break;
      }
      this.renderer.render(this.scene, this.camera);
      this.noteDrawn();
      const pixels = new Uint8Array(w * h * 4);
      gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
      if (previous && pixels.every((v, i) => v === previous[i])) break;
      previous = pixels;
    }
    this.dirty = false;
    return { ms: performance.now() - start, cycles: cycles + 1 };
  }

  /** The canvas as a PNG data URL. */
  snapshot() {
    return this.canvas.toDataURL("image/png");
  }
}
