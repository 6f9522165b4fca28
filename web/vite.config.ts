/**
 * Builds the page into web/dist. `convlab serve` runs this build on demand (src/serve/web-build.ts) and
 * `npm run build:web` runs it by hand. Everything is bundled from node_modules: nothing from a CDN.
 * For page development, `npx vite web` serves it with the API proxied to `convlab serve` on port 8080.
 */
import { fileURLToPath } from 'node:url';
import { createLogger, defineConfig } from 'vite';

const api = 'http://127.0.0.1:8080';

// src/predict/preprocess.ts imports node:fs/promises lazily, only for files on disk (never in the page):
// Vite's notice that it stubbed it out for the browser is expected, so it is not shown.
const logger = createLogger();
const warn = logger.warn.bind(logger);
logger.warn = (message, options) => {
  if (message.includes('node:fs/promises') && message.includes('externalized for browser compatibility')) return;
  warn(message, options);
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  publicDir: false,
  customLogger: logger,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // TensorFlow.js is one large chunk by nature; the page loads it once and caches it.
    chunkSizeWarningLimit: 4096,
    rolldownOptions: {
      // src/predict/preprocess.ts imports the Skia decoder lazily, only in Node: never bundle it.
      external: ['@napi-rs/canvas'],
      // the same lazy import, seen by the bundler
      onwarn(warning, warn) {
        const nodeOnly = /node:fs\/promises|__vite-browser-external/.test(warning.message);
        if (nodeOnly && (warning.code === 'INEFFECTIVE_DYNAMIC_IMPORT' || warning.code === 'PLUGIN_WARNING')) return;
        warn(warning);
      },
    },
  },
  server: {
    host: '127.0.0.1',
    proxy: { '/api': api, '/model': api, '/tfjs-wasm': api, '/healthz': api },
  },
});
