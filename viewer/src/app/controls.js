// Camera controls: orbit (three.js OrbitControls) and fly (WASD + drag to look), with a toggle.
//
// Both work with any world "up" (splat captures usually have y pointing down), which is why
// fly mode is written here rather than taken from Spark's FpsMovement/PointerControls: those
// derive yaw and pitch from Euler angles about +y.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";

const MOVE_KEYS = {
  KeyW: [0, 0, -1], KeyS: [0, 0, 1], KeyA: [-1, 0, 0], KeyD: [1, 0, 0],
  ArrowUp: [0, 0, -1], ArrowDown: [0, 0, 1], ArrowLeft: [-1, 0, 0], ArrowRight: [1, 0, 0],
};
const VERTICAL_KEYS = { KeyE: 1, Space: 1, KeyQ: -1, KeyC: -1 };

/** WASD to move (Q/E down/up, Shift faster), drag to look, wheel to change speed. */
class FlyControls {
  constructor(camera, element) {
    this.camera = camera;
    this.element = element;
    this.enabled = false;
    this.speed = 1; // scene units per second
    this.lookSpeed = 0.004; // radians per pixel
    this.keys = new Set();
    this.drag = null;
    this.onKey = (e) => {
      if (!this.enabled || e.target instanceof HTMLInputElement) return;
      if (e.type === "keydown") this.keys.add(e.code);
      else this.keys.delete(e.code);
    };
    this.onBlur = () => this.keys.clear();
    this.onDown = (e) => {
      if (!this.enabled) return;
      this.drag = { x: e.clientX, y: e.clientY, id: e.pointerId };
      element.setPointerCapture?.(e.pointerId);
    };
    this.onMove = (e) => {
      if (!this.enabled || !this.drag || e.pointerId !== this.drag.id) return;
      this.look(e.clientX - this.drag.x, e.clientY - this.drag.y);
      this.drag.x = e.clientX;
      this.drag.y = e.clientY;
    };
    this.onUp = (e) => {
      if (this.drag && e.pointerId === this.drag.id) this.drag = null;
    };
    this.onWheel = (e) => {
      if (!this.enabled) return;
      e.preventDefault();
      this.speed *= Math.exp(-e.deltaY * 0.001);
    };
    window.addEventListener("keydown", this.onKey);
    window.addEventListener("keyup", this.onKey);
    window.addEventListener("blur", this.onBlur);
    element.addEventListener("pointerdown", this.onDown);
    element.addEventListener("pointermove", this.onMove);
    element.addEventListener("pointerup", this.onUp);
    element.addEventListener("pointercancel", this.onUp);
    element.addEventListener("wheel", this.onWheel, { passive: false });
  }

  /** Yaw about the world up, pitch about the camera's right axis (kept off the poles). */
  look(dx, dy) {
    const cam = this.camera;
    const up = cam.up.clone().normalize();
    const yaw = new THREE.Quaternion().setFromAxisAngle(up, -dx * this.lookSpeed);
    cam.quaternion.premultiply(yaw);
    const right = new THREE.Vector3(1, 0, 0).applyQuaternion(cam.quaternion);
    const fwd = new THREE.Vector3(0, 0, -1).applyQuaternion(cam.quaternion);
    const pitch = -dy * this.lookSpeed;
    const elevation = Math.asin(THREE.MathUtils.clamp(fwd.dot(up), -1, 1));
    const limit = Math.PI / 2 - 0.01;
    const clamped = THREE.MathUtils.clamp(elevation + pitch, -limit, limit) - elevation;
    cam.quaternion.premultiply(new THREE.Quaternion().setFromAxisAngle(right, clamped));
    cam.quaternion.normalize();
  }

  /** Move for `dt` seconds; true when the camera moved. */
  update(dt) {
    if (!this.enabled || this.keys.size === 0) return false;
    const move = new THREE.Vector3();
    for (const k of this.keys) if (MOVE_KEYS[k]) move.add(new THREE.Vector3(...MOVE_KEYS[k]));
    move.applyQuaternion(this.camera.quaternion);
    for (const k of this.keys) if (VERTICAL_KEYS[k]) move.addScaledVector(this.camera.up, VERTICAL_KEYS[k]);
    if (move.lengthSq() === 0) return false;
    const fast = this.keys.has("ShiftLeft") || this.keys.has("ShiftRight") ? 4 : 1;
    this.camera.position.addScaledVector(move.normalize(), this.speed * fast * dt);
    return true;
  }

  dispose() {
    window.removeEventListener("keydown", this.onKey);
    window.removeEventListener("keyup", this.onKey);
    window.removeEventListener("blur", this.onBlur);
    this.element.removeEventListener("pointerdown", this.onDown);
    this.element.removeEventListener("pointermove", this.onMove);
    this.element.removeEventListener("pointerup", this.onUp);
    this.element.removeEventListener("pointercancel", this.onUp);
    this.element.removeEventListener("wheel", this.onWheel);
  }
}

/** Orbit and fly controls of one camera; `mode` is "orbit" or "fly". */
export class ViewControls {
  constructor(camera, element) {
    this.camera = camera;
    this.element = element;
    this.fly = new FlyControls(camera, element);
    this.orbit = null;
    this.mode = "orbit";
    this.makeOrbit(new THREE.Vector3());
  }

  makeOrbit(target) {
    this.orbit?.dispose();
    // OrbitControls reads camera.up when it is built.
    this.orbit = new OrbitControls(this.camera, this.element);
    this.orbit.enableDamping = true;
    this.orbit.dampingFactor = 0.12;
    this.orbit.screenSpacePanning = true;
    this.orbit.target.copy(target);
    this.orbit.enabled = this.mode === "orbit";
    this.orbit.update();
  }

  /** Orbit around `target` (the camera keeps its position); fly speed follows the scene size. */
  frame(target, radius) {
    this.makeOrbit(target);
    this.fly.speed = Math.max(radius, 1e-3) * 0.6;
  }

  /** Change the world up direction (rebuilds the orbit controls around the same target). */
  setUp(up) {
    this.camera.up.copy(up).normalize();
    this.makeOrbit(this.orbit.target.clone());
  }

  setMode(mode) {
    if (mode !== "orbit" && mode !== "fly") throw new Error(`unknown control mode '${mode}'`);
    if (mode === this.mode) return;
    if (mode === "orbit") {
      // Orbit around the point in front of the camera at the old orbit distance.
      const dist = Math.max(this.orbit.target.distanceTo(this.camera.position), 1e-3);
      const fwd = new THREE.Vector3(0, 0, -1).applyQuaternion(this.camera.quaternion);
      this.mode = mode;
      this.makeOrbit(this.camera.position.clone().addScaledVector(fwd, dist));
    } else {
      this.mode = mode;
      this.orbit.enabled = false;
    }
    this.fly.enabled = mode === "fly";
  }

  toggle() {
    this.setMode(this.mode === "orbit" ? "fly" : "orbit");
    return this.mode;
  }

  /** Advance the active controls by `dt` seconds. */
  update(dt) {
    if (this.mode === "orbit") this.orbit.update(dt);
    else this.fly.update(dt);
  }

  /** Stop any motion (damping, held keys), e.g. before a scripted camera is set. */
  halt() {
    this.fly.keys.clear();
    this.fly.drag = null;
    if (this.mode === "orbit") {
      this.makeOrbit(this.orbit.target.clone());
    }
  }
}
