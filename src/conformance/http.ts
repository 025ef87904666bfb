/**
 * The kit's HTTP client. It is node:http rather than fetch on purpose: fetch
 * follows WHATWG URL rules and would turn `/api/t/%2e` into `/api/t/` before
 * sending it, and the id checks must put exactly that path on the wire.
 */
import { request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** One answer, read whole. `json` is undefined when the body is empty or not JSON. */
export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

/** The request never got an answer (refused, reset, timed out). */
export class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
}

export interface HttpOptions {
  /** Sent with every request (e.g. Authorization). */
  headers?: Record<string, string>;
  /** How long a request may take before it counts as unanswered. */
  timeoutMs?: number;
}

export class Http {
  private readonly prefix: string;
  readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  /** @param base the backend's origin, optionally with a path prefix (`https://host/v1`) */
  constructor(
    readonly base: URL,
    opts: HttpOptions = {},
  ) {
    this.prefix = base.pathname.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.headers = opts.headers ?? {};
  }

  /**
   * Sends one request to `path` (already percent-encoded, sent as is) under
   * the base's prefix. `body` is JSON-encoded unless it is a string.
   */
  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const type: Record<string, string> = payload === undefined ? {} : { 'Content-Type': 'application/json' };
    try {
      const res = await this.open(method, path, { ...type, ...headers }, payload);
      const text = await readAll(res, this.timeoutMs);
      return { status: res.statusCode ?? 0, headers: res.headers, text, json: parseJson(text) };
    } catch (err) {
      throw new NoAnswerError(`${method} ${path}: no answer: ${asNoAnswer(err).message}`);
    }
  }

  /** Sends a GET and resolves once the answer's head arrived; the body is left to the caller. */
  stream(path: string, headers: Record<string, string> = {}): Promise<{ res: IncomingMessage; req: ClientRequest }> {
    return new Promise((resolve, reject) => {
      const req = this.send('GET', path, { Accept: 'text/event-stream', ...headers });
      const timer = setTimeout(() => req.destroy(new NoAnswerError(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('response', (res) => {
        clearTimeout(timer);
        resolve({ res, req });
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(new NoAnswerError(`GET ${path}: no answer: ${asNoAnswer(err).message}`));
      });
      req.end();
    });
  }

  /** The path as it is sent: the base's prefix, then `path`. */
  fullPath(path: string): string {
    return this.prefix + path;
  }

  private open(method: string, path: string, headers: Record<string, string>, payload: string | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.send(method, path, headers);
      const timer = setTimeout(() => req.destroy(new NoAnswerError(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('response', (res) => {
        clearTimeout(timer);
        resolve(res);
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(asNoAnswer(err));
      });
      req.end(payload);
    });
  }

  private send(method: string, path: string, headers: Record<string, string>): ClientRequest {
    const request = this.base.protocol === 'https:' ? httpsRequest : httpRequest;
    return request({
      protocol: this.base.protocol,
      hostname: this.base.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.base.port,
      method,
      path: this.fullPath(path),
      // A fresh connection per request: a half-read stream never blocks the next check.
      agent: false,
      headers: { ...this.headers, ...headers },
    });
  }
}

function readAll(res: IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => res.destroy(new NoAnswerError(`the body did not end within ${timeoutMs} ms`)), timeoutMs);
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    res.on('error', (err) => {
      clearTimeout(timer);
      reject(asNoAnswer(err));
    });
  });
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function asNoAnswer(err: unknown): NoAnswerError {
  if (err instanceof NoAnswerError) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  return new NoAnswerError(typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message);
}
