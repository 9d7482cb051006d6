// Vite build of splatpack's web viewer into the Python package (splatpack/view/static), so that
// `pip install splatpack` users get a working `splatpack view` without npm. Relative asset paths
// (base './') let the server mount the app anywhere.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: {
    outDir: fileURLToPath(new URL("../splatpack/view/static", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    assetsDir: "assets",
    sourcemap: false,
    // Spark inlines its WebAssembly sorter and decoders, so its chunk is large by nature.
    chunkSizeWarningLimit: 4096,
  },
  worker: { format: "es" },
});
