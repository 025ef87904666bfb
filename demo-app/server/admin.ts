import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Master } from './context.js';
import { HttpError, methodNotAllowed, notFound } from './errors.js';
import { parseJsonObject, readBody, sendJson } from './http.js';
import { owners } from './auth/auth.js';
import { SEED_TABLE, seedEveryOwner } from './seed.js';
import { OPEN } from './storage/types.js';
import { assertRowId } from './validate.js';
import { patchRow } from './writes.js';

const MAX_SEED_ROWS = 100_000;

// Answers OPTIONS and refuses other methods; true when the request is done.
function handledByAllow(res: ServerResponse, method: string, allow: readonly string[]): boolean {
  if (method === 'OPTIONS') {
    sendJson(res, 204, null, { Allow: [...allow, 'OPTIONS'].join(', ') });
    return true;
  }
  if (!allow.includes(method)) throw methodNotAllowed(method, [...allow, 'OPTIONS']);
  return false;
}

/** Handles `/admin/...`; `path` is what follows `admin`. */
export async function handleAdmin(req: IncomingMessage, res: ServerResponse, ctx: Master, path: string[]): Promise<void> {
  const route = path.join('/');
  const method = req.method ?? 'GET';
  switch (route) {
    case 'stats':
      if (handledByAllow(res, method, ['GET'])) return;
      sendJson(res, 200, { ...ctx.stats, events: await ctx.storage.latestEventId() });
      return;
    case 'seed': {
      // Wipes the products table: a test-rig action, like fault injection.
      if (!ctx.chaosEnabled) throw notFound();
      if (handledByAllow(res, method, ['POST'])) return;
      const body = parseJsonObject(await readBody(req, ctx.maxBodyBytes), {});
      const rows = body.rows ?? 0;
      if (typeof rows !== 'number' || !Number.isInteger(rows) || rows < 0 || rows > MAX_SEED_ROWS) {
        throw new HttpError(400, 'invalid_body', `rows must be an integer from 0 to ${MAX_SEED_ROWS}`);
      }
      if (ctx.isClosed()) return void req.socket.destroy();
      // In auth mode every user gets the seeded table; rows counts one user's.
      const events = await seedEveryOwner(ctx.storage, owners(ctx.auth), { sample: true, rows });
      const last = events.at(-1);
      const { total } = await ctx.storage.listRows(last?.owner ?? OPEN, SEED_TABLE, 0, 0);
      sendJson(res, 200, { rows: total, eventId: String(last?.eventId ?? (await ctx.storage.latestEventId())) });
      return;
    }
    case 'chaos':
      if (!ctx.chaosEnabled) throw notFound();
      if (handledByAllow(res, method, ['GET', 'POST'])) return;
      if (method === 'POST') ctx.chaos.update(parseJsonObject(await readBody(req, ctx.maxBodyBytes)));
      sendJson(res, 200, ctx.chaos.state());
      return;
    case 'edit': {
      // Another client's change to a product, made even while the API refuses
      // the app (chaos "down"): the demo's way to provoke a conflict.
      if (!ctx.chaosEnabled) throw notFound();
      if (handledByAllow(res, method, ['POST'])) return;
      const { id, patch } = parseJsonObject(await readBody(req, ctx.maxBodyBytes));
      assertRowId(id);
      if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw new HttpError(400, 'invalid_body', 'patch must be a JSON object');
      let row: unknown;
      for (const owner of owners(ctx.auth)) {
        const committed = await ctx.storage.commit(owner, patchRow(SEED_TABLE, id, patch as Record<string, unknown>), undefined, ctx.now()).catch((err: unknown) => {
          if (err instanceof HttpError && err.status === 404) return undefined;
          throw err;
        });
        row ??= committed?.body;
      }
      if (row === undefined) throw new HttpError(404, 'not_found', `${SEED_TABLE}/${id} does not exist`);
      sendJson(res, 200, row);
      return;
    }
    case 'chaos/reset':
      if (!ctx.chaosEnabled) throw notFound();
      if (handledByAllow(res, method, ['POST'])) return;
      ctx.chaos.reset();
      sendJson(res, 200, ctx.chaos.state());
      return;
    default:
      throw notFound();
  }
}
