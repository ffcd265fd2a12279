// Admin POST /idempotency/end: the upstream ends a key's in-flight state early (or forgets the key).
import type { Hono } from 'hono';
import { idempotencyScope, type KeyOwner } from '../../gates/idempotency/scope.js';
import type { Logger } from '../../obs/log.js';
import type { Metrics } from '../../obs/metrics.js';
import { storeErrorCode, type VersionStore } from '../../store/port.js';
import { badRequest, jsonBody, sendProblem } from './guard.js';

const KEY_RE = /^[\x20-\x7e]{1,255}$/;
const OWNER_MAX = 1024;

/** `{"client":"<client id>"|"ip":"<address>","key":"<X-Idempotency-Key>","forget"?:true}`, or a message. */
export function parseEnd(body: unknown): { owner: KeyOwner; key: string; forget: boolean } | string {
  const usage = 'expected {"client":"<the token\'s client id>","key":"<X-Idempotency-Key>"} (or "ip" instead of "client" on a public route), and optionally "forget":true';
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return usage;
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!['client', 'ip', 'key', 'forget'].includes(k)) return `${k}: unknown field; ${usage}`;
  if (typeof b.key !== 'string' || !KEY_RE.test(b.key)) return 'key: expected the key as the gate sent it in X-Idempotency-Key (1 to 255 printable ASCII characters)';
  if ((b.client === undefined) === (b.ip === undefined)) return `exactly one of client and ip; ${usage}`;
  const who = b.client ?? b.ip;
  if (typeof who !== 'string' || who === '' || who.length > OWNER_MAX) return `${b.client !== undefined ? 'client' : 'ip'}: expected a non-empty string`;
  if (b.forget !== undefined && typeof b.forget !== 'boolean') return 'forget: expected true or false';
  return { owner: b.client !== undefined ? { client: who } : { ip: who }, key: b.key, forget: b.forget === true };
}

/**
 * The upstream finished (or gave up on) a request with an Idempotency-Key. `ended`: a retry of the
 * same request now passes (for the upstream to answer from what it stored); `forget`: the key is
 * free again (the upstream stored nothing, e.g. its own precondition refused the write).
 */
export function mountIdempotency(app: Hono, deps: { store: VersionStore; metrics: Metrics; log: Logger }): void {
  const { store, metrics, log } = deps;
  app.post('/idempotency/end', async (c) => {
    const req = parseEnd(await jsonBody(c));
    if (typeof req === 'string') return badRequest(c, req);
    try {
      const r = await store.endIdempotent(idempotencyScope(req.owner, req.key), req.forget);
      if (r === 'missing') return sendProblem(c, { status: 404, code: 'not_found', title: 'Not found', detail: 'No request with this client and Idempotency-Key is recorded (never seen, or past its ttl).' });
      return c.json({ ended: r === 'ended', forgotten: req.forget }, 200);
    } catch (err) {
      const code = storeErrorCode(err);
      metrics.storeError(store.kind, 'idempotency_end', code);
      log.warn({ op: 'idempotency_end', code }, 'admin: store unavailable');
      return sendProblem(c, { status: 503, code: 'store_unavailable', title: 'Store unavailable', detail: 'The store did not answer.', headers: { 'Retry-After': '1' } });
    }
  });
}
