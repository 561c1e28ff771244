import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

// Built into dist/dashboard at `npm run build` (and so at `npm ci`), served by `inlet serve`.
export default defineConfig({
  root,
  base: '/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // Everything ships inside the package: no CDN, no network at run time.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
