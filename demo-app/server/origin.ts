import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { HttpError } from './errors.js';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Who may talk to the master: page origins that may write, and the names it answers to. */
export interface Audience {
  origins: ReadonlySet<string>;
  /** Host header values (`name:port`, lower case) that address this server. */
  hosts: ReadonlySet<string>;
}

const withPort = (name: string, port: number): string => `${name.includes(':') ? `[${name}]` : name}:${port}`;

/**
 * The names this server answers to: its own, loopback, and when it listens on
 * every interface, each interface address and the machine's name.
 */
function ownHosts(host: string, port: number): string[] {
  const names = [host, 'localhost', '127.0.0.1', '::1'];
  if (host === '0.0.0.0' || host === '::') {
    names.push(hostname());
    for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) names.push(a.address);
  }
  const hosts = names.map((name) => withPort(name.toLowerCase(), port));
  // Browsers leave out the default port.
  return port === 80 ? [...hosts, ...hosts.map((h) => h.replace(/:80$/, ''))] : hosts;
}

/**
 * The server's own origins plus `extraOrigins` (e.g. a dev server that
 * proxies to it), and the Host values of all of them plus `extraHosts`.
 */
export function audience(host: string, port: number, extraOrigins: readonly string[] = [], extraHosts: readonly string[] = []): Audience {
  const own = ownHosts(host, port);
  const origins = new Set([...own.map((h) => `http://${h}`), ...extraOrigins]);
  const hosts = new Set([...own, ...[...origins].map((o) => new URL(o).host), ...extraHosts.map((h) => h.toLowerCase())]);
  return { origins, hosts };
}

/**
 * Refuses a request addressed to a name that is not this server's. A page
 * of a DNS-rebinding attack reaches us under its own domain name, and the
 * Host header is the only place that name shows.
 */
export function assertHost(req: IncomingMessage, allowed: Audience): void {
  const host = req.headers.host?.toLowerCase();
  if (host === undefined || !allowed.hosts.has(host)) {
    throw new HttpError(403, 'forbidden_host', `Host "${host ?? ''}" is not a name of this server; start it with --allowed-host to add one`);
  }
}

/**
 * Refuses a request a browser sent from a foreign page: writes (a browser
 * always sends `Origin` on those) and WebSocket upgrades (not covered by
 * CORS, so without this any page could read the feed). Requests without the
 * header come from non-browser clients such as curl or Node and are allowed.
 */
export function assertOrigin(req: IncomingMessage, allowed: Audience, opts: { upgrade?: boolean } = {}): void {
  const origin = req.headers.origin;
  if (origin === undefined || (opts.upgrade !== true && !WRITE_METHODS.has(req.method ?? ''))) return;
  if (!allowed.origins.has(origin)) {
    throw new HttpError(403, 'forbidden_origin', `${opts.upgrade === true ? 'feeds' : 'writes'} from origin ${origin} are not allowed`);
  }
}

/**
 * Lets pages from allowed origins call the API cross-origin (e.g. a Vite dev
 * server). With `credentials` (auth mode) they may send the session cookie.
 */
export function setCorsHeaders(req: IncomingMessage, res: ServerResponse, allowed: Audience, opts: { credentials?: boolean } = {}): void {
  res.setHeader('Vary', 'Origin');
  const origin = req.headers.origin;
  if (origin === undefined || !allowed.origins.has(origin)) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  if (opts.credentials === true) res.setHeader('Access-Control-Allow-Credentials', 'true');
  res.setHeader('Access-Control-Expose-Headers', 'Idempotent-Replayed, Retry-After');
  if (req.method === 'OPTIONS') {
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Idempotency-Key, Last-Event-ID, Authorization');
    res.setHeader('Access-Control-Max-Age', '600');
  }
}

/** An `--allowed-origin` value as browsers send it (`scheme://host[:port]`), or an error saying what is wrong. */
export function normaliseOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--allowed-origin must look like http://localhost:5173, got "${value}"`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== value.replace(/\/$/, '')) {
    throw new Error(`--allowed-origin must be scheme://host[:port] with nothing after it, like http://localhost:5173, got "${value}"`);
  }
  return url.origin;
}
