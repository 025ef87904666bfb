import { defineConfig } from 'vite';
import { vantageLiveWorker } from 'vantage-live/vite';

export default defineConfig({
  // Builds src/sw.ts as dist/sw.js (one classic script) with the app shell's precache list; `vite` serves it at /sw.js.
  plugins: [vantageLiveWorker({ entry: 'src/sw.ts' })],
  // For `vite` against a local master (npm run master in the vantage-live repo, with --allowed-origin http://localhost:5173).
  server: { proxy: { '/api': { target: 'http://127.0.0.1:8787', changeOrigin: true } } },
});
