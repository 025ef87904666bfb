/**
 * A Vite plugin that builds the app's service worker: import from
 * 'vantage-live/vite'. The worker must be one classic script with a stable
 * name (browsers compare its bytes to decide on an update, and a module
 * worker cannot be registered everywhere), so it cannot be an ordinary entry
 * of the app's build, whose files get hashed names and shared chunks.
 *
 * `vite build`: after the app's bundle is written, the worker entry is built
 * on its own as an iife into the same outDir, and the list of the app shell's
 * files (with revisions) is injected into it by workbox-build's
 * `injectManifest`, so the worker can precache them for an offline reload.
 *
 * `vite` (dev server): the worker is built on request at the same URL, not
 * minified, with an empty precache list; a change to any file makes the next
 * request build it again, so the browser sees new bytes and updates it.
 */
import { resolve } from 'node:path';
import { build, type InlineConfig, type Plugin, type ResolvedConfig } from 'vite';

export interface VantageLiveWorkerOptions {
  /** The worker's source, relative to the Vite root (e.g. 'src/sw.ts'). */
  entry: string;
  /** The built worker's name in outDir, and its URL path under `base`; default 'sw.js'. */
  fileName?: string;
  /**
   * Globs (relative to outDir) of the app-shell files to precache; default
   * every html, js, css, image, font and web manifest. `false` injects nothing.
   */
  precache?: string[] | false;
  /** Globs to leave out of the precache; the worker itself is always left out. */
  precacheIgnore?: string[];
  /** Replacements in the worker's code, as Vite's `define`; the app's own `define` applies too. */
  define?: Record<string, string>;
  /** Minify the built worker; default true. */
  minify?: boolean;
}

/** The placeholder workbox-build replaces with the precache list. */
const INJECTION_POINT = 'self.__WB_MANIFEST';
const DEFAULT_PRECACHE = ['**/*.{html,js,css,svg,png,jpg,webp,ico,woff2,webmanifest}'];

export function vantageLiveWorker(opts: VantageLiveWorkerOptions): Plugin {
  const fileName = opts.fileName ?? 'sw.js';
  let config: ResolvedConfig;

  const workerBuild = (mode: 'build' | 'serve', outDir: string): InlineConfig => ({
    configFile: false,
    root: config.root,
    mode: config.mode,
    logLevel: 'warn',
    define: {
      ...config.define,
      ...opts.define,
      'process.env.NODE_ENV': JSON.stringify(mode === 'build' ? 'production' : 'development'),
      // In dev there is nothing to precache: the dev server serves every file fresh.
      ...(mode === 'serve' ? { [INJECTION_POINT]: '[]' } : {}),
    },
    build: {
      outDir,
      emptyOutDir: false,
      write: mode === 'build',
      minify: mode === 'build' && (opts.minify ?? true),
      copyPublicDir: false,
      lib: { entry: resolve(config.root, opts.entry), formats: ['iife'], name: 'vantageLiveServiceWorker', fileName: () => fileName },
    },
  });

  return {
    name: 'vantage-live-worker',

    configResolved(resolved) {
      config = resolved;
    },

    configureServer(server) {
      const path = `${config.base.replace(/\/?$/, '/')}${fileName}`;
      let built: Promise<string> | undefined;
      server.watcher.on('all', () => (built = undefined));
      server.middlewares.use((req, res, next) => {
        if (req.url?.split('?')[0] !== path) return next();
        built ??= build(workerBuild('serve', config.build.outDir)).then(codeOf);
        built.then(
          (code) => {
            res.setHeader('Content-Type', 'text/javascript');
            res.setHeader('Cache-Control', 'no-cache');
            res.end(code);
          },
          (err: unknown) => {
            built = undefined;
            next(err);
          },
        );
      });
    },

    async closeBundle() {
      // Vite 6+ runs this hook once per environment of the build: the worker belongs to the client's.
      const environment = (this as { environment?: { name: string } }).environment;
      if (config.command !== 'build' || config.build.ssr || (environment && environment.name !== 'client')) return;
      const outDir = resolve(config.root, config.build.outDir);
      await build(workerBuild('build', outDir));
      const swPath = resolve(outDir, fileName);
      if (opts.precache === false) return;
      const { readFile } = await import('node:fs/promises');
      if (!(await readFile(swPath, 'utf8')).includes(INJECTION_POINT)) {
        config.logger.warn(`vantage-live: ${opts.entry} never reads ${INJECTION_POINT}, so no precache list was injected (call serveAppShell from 'vantage-live/worker-shell')`);
        return;
      }
      const { injectManifest } = await import('workbox-build');
      const { count, size, warnings } = await injectManifest({
        swSrc: swPath,
        swDest: swPath,
        globDirectory: outDir,
        globPatterns: opts.precache ?? DEFAULT_PRECACHE,
        globIgnores: [fileName, `${fileName}.map`, ...(opts.precacheIgnore ?? [])],
      });
      warnings.forEach((w) => config.logger.warn(`vantage-live: ${w}`));
      config.logger.info(`vantage-live: service worker ${fileName}, ${count} files precached (${Math.round(size / 1024)} KiB)`);
    },
  };
}

function codeOf(output: Awaited<ReturnType<typeof build>>): string {
  const outputs = Array.isArray(output) ? output : [output];
  for (const out of outputs) {
    if (!('output' in out)) continue;
    const chunk = out.output.find((o) => o.type === 'chunk');
    if (chunk && chunk.type === 'chunk') return chunk.code;
  }
  throw new Error('vantage-live: the worker build produced no code');
}
