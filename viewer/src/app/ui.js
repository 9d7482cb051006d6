// The overlay: stats panel, progress bar, messages, drag-and-drop and the file picker.

const $ = (id) => document.getElementById(id);

function formatBytes(b) {
  if (!b) return "-";
  if (b < 1e3) return `${b} B`;
  if (b < 1e6) return `${(b / 1e3).toFixed(1)} kB`;
  return `${(b / 1e6).toFixed(2)} MB`;
}

function formatMs(ms) {
  return ms === undefined ? null : ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export class Overlay {
  constructor() {
    this.stats = $("stats");
    this.progress = $("progress");
    this.bar = $("progress-bar");
    this.label = $("progress-label");
    this.message = $("message");
    this.drop = $("drop");
    this.picker = $("picker");
    this.modeButton = $("mode");
  }

  setProgress(fraction, label) {
    this.progress.hidden = false;
    this.bar.style.width = fraction === null || fraction === undefined
      ? "100%"
      : `${Math.max(0, Math.min(1, fraction)) * 100}%`;
    this.bar.style.opacity = fraction === null || fraction === undefined ? "0.4" : "1";
    this.label.textContent = label ?? "";
  }

  hideProgress() {
    this.progress.hidden = true;
  }

  showMessage(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  setMode(mode) {
    this.modeButton.textContent = mode === "orbit" ? "Orbit" : "Fly (WASD)";
  }

  /** Render the stats panel from Viewer.stats(). */
  showStats(s) {
    if (!s.file) {
      this.stats.textContent = "";
      return;
    }
    const t = s.timings || {};
    const lines = [
      `${s.file} (${s.format}${s.kind ? `, ${s.kind}` : ""})`,
      `Gaussians  ${s.numGaussians.toLocaleString()}${s.loading ? " (loading)" : ""}`,
      `SH degree  ${s.shDegree}`,
      `file size  ${formatBytes(s.bytes)}`,
    ];
    if (t.downloadMs !== undefined) lines.push(`download   ${formatMs(t.downloadMs)}`);
    if (t.decodeMs !== undefined) lines.push(`decode     ${formatMs(t.decodeMs)}`);
    if (t.downloadDecodeMs !== undefined) lines.push(`load+decode ${formatMs(t.downloadDecodeMs)}`);
    lines.push(`fps        ${s.fps}${s.fps === 0 ? " (idle)" : ""}`);
    lines.push(`controls   ${s.mode}`);
    this.stats.textContent = lines.join("\n");
  }

  /** Call `onFile(File)` for files dropped on the window or chosen in the picker. */
  bindFiles(onFile) {
    let depth = 0;
    const hasFiles = (e) => Array.from(e.dataTransfer?.types ?? []).includes("Files");
    window.addEventListener("dragenter", (e) => {
      if (!hasFiles(e)) return;
      depth += 1;
      this.drop.hidden = false;
    });
    window.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) this.drop.hidden = true;
    });
    window.addEventListener("dragover", (e) => {
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
    });
    window.addEventListener("drop", (e) => {
      e.preventDefault();
      depth = 0;
      this.drop.hidden = true;
      const file = e.dataTransfer?.files?.[0];
      if (file) onFile(file);
    });
    $("open").addEventListener("click", () => this.picker.click());
    this.picker.addEventListener("change", () => {
      const file = this.picker.files?.[0];
      if (file) onFile(file);
      this.picker.value = "";
    });
  }
}
