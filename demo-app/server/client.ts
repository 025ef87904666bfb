/**
 * One client of the reference master for everything in the repo that talks to
 * it as another client would (integration tests, e2e, the tour, the bench):
 * plain fetch, the admin token on `/admin`, and the chaos settings typed once.
 */
import type { ChaosState } from './chaos.js';

/** What `POST /admin/chaos` takes: any subset of the fault-injection settings. */
export type ChaosSettings = Partial<ChaosState>;

/** What `GET /admin/stats` answers. */
export interface MasterStats {
  writes: number;
  replays: number;
  events: number;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

/** What `POST /auth/login` answers (auth mode). */
export interface LoginReply {
  user: string;
  token: string;
  /** Ms since the epoch, by the master's clock. */
  expiresAt: number;
}

export class MasterClient {
  /**
   * @param url the master's origin, e.g. `http://127.0.0.1:8787`
   * @param adminToken sent as `Authorization: Bearer` on `/admin` calls
   * @param sessionToken sent as `Authorization: Bearer` on every other call (a master in auth mode)
   */
  constructor(
    readonly url: string,
    private readonly adminToken?: string,
    private readonly sessionToken?: string,
  ) {}

  /** One request; `body` is sent as JSON unless it is already a string. Calls carry the admin or session token unless `headers` set Authorization. */
  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const token = path.startsWith('/admin') ? this.adminToken : this.sessionToken;
    const auth: Record<string, string> = token !== undefined && !('Authorization' in headers) ? { Authorization: `Bearer ${token}` } : {};
    const type: Record<string, string> = body === undefined || typeof body === 'string' ? {} : { 'content-type': 'application/json' };
    const init: RequestInit = { method, headers: { ...type, ...auth, ...headers } };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const res = await fetch(this.url + path, init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
  }

  /** Signs in (`POST /auth/login`); the client of that session, and the session. */
  async login(user: string, password: string): Promise<{ client: MasterClient; session: LoginReply }> {
    const reply = await this.call('POST', '/auth/login', { user, password });
    if (reply.status !== 200) throw new Error(`login as ${user}: ${reply.status} ${JSON.stringify(reply.body)}`);
    const session = reply.body as LoginReply;
    return { client: new MasterClient(this.url, this.adminToken, session.token), session };
  }

  /** An `/admin` call that must answer 200; its body. */
  async admin(method: string, path: string, body?: unknown): Promise<any> {
    const reply = await this.call(method, `/admin${path}`, body);
    if (reply.status !== 200) throw new Error(`${method} /admin${path}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return reply.body;
  }

  async chaos(settings: ChaosSettings): Promise<void> {
    await this.admin('POST', '/chaos', settings);
  }

  async resetChaos(): Promise<void> {
    await this.admin('POST', '/chaos/reset');
  }

  async stats(): Promise<MasterStats> {
    return this.admin('GET', '/stats');
  }

  /** Replace the products table with a, b, c and `rows` generated products (chaos mode only). */
  async seed(rows = 0): Promise<void> {
    await this.admin('POST', '/seed', { rows });
  }

  /** Every row of a table in the master's order. */
  async rows(table = 'products'): Promise<Array<Record<string, unknown>>> {
    const all: Array<Record<string, unknown>> = [];
    for (let page = 1; ; page++) {
      const reply = await this.call('GET', `/api/${table}?page=${page}&ipp=1000`);
      if (reply.status !== 200) throw new Error(`GET ${table} page ${page}: ${reply.status} ${JSON.stringify(reply.body)}`);
      all.push(...reply.body.rows);
      if (reply.body.rows.length < 1000) return all;
    }
  }
}
