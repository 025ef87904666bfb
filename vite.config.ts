/**
 * Builds the demo PWA into demo-app/dist, and the service worker as its own
 * entry: one classic-script file with a stable name (demo-app/dist/sw.js), into
 * which the app shell's precache manifest is injected after both builds.
 */
import { resolve } from 'node:path';
import { build, defineConfig, type Plugin } from 'vite';
import { injectManifest } from 'workbox-build';

const outDir = resolve(import.meta.dirname, 'demo-app/dist');
const version = process.env.APP_VERSION ?? new Date().toISOString();

function serviceWorker(): Plugin {
  return {
    name: 'vantage-live-service-worker',
    apply: 'build',
    async closeBundle() {
      await build({
        configFile: false,
        logLevel: 'warn',
        define: { __APP_VERSION__: JSON.stringify(version), 'process.env.NODE_ENV': JSON.stringify('production') },
        build: {
          outDir,
          emptyOutDir: false,
          // Minified like a production worker, so the e2e tests prove errors keep their class without class names.
          minify: true,
          lib: { entry: resolve(import.meta.dirname, 'sw/sw.ts'), formats: ['iife'], name: 'vantageLiveWorker', fileName: () => 'sw.js' },
        },
      });
      const { count, warnings } = await injectManifest({
        swSrc: resolve(outDir, 'sw.js'),
        swDest: resolve(outDir, 'sw.js'),
        globDirectory: outDir,
        globPatterns: ['**/*.{html,js,css,svg,png,webmanifest}'],
        globIgnores: ['sw.js'],
      });
      warnings.forEach((w) => console.warn(w));
      console.log(`service worker: demo-app/dist/sw.js, ${count} files precached`);
    },
  };
}

export default defineConfig({
  root: resolve(import.meta.dirname, 'demo-app'),
  define: { __APP_VERSION__: JSON.stringify(version) },
  build: { outDir, emptyOutDir: true, sourcemap: true },
  // changeOrigin: the master accepts only its own Host (DNS rebinding); start it with --allowed-origin http://localhost:5173 so the dev page may write.
  server: { proxy: { '/api': { target: 'http://127.0.0.1:8787', changeOrigin: true }, '/admin': { target: 'http://127.0.0.1:8787', changeOrigin: true } } },
  plugins: [serviceWorker()],
});
