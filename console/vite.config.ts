import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The web console: built by `npm run build` into dist/console, served at `/` by the service. */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // Served from the service itself: no module-preload polyfill, nothing from another host.
    modulePreload: { polyfill: false },
  },
});
