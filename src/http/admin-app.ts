// The admin listener: /healthz, /readyz, /metrics, and the versions API behind GATE_ADMIN_TOKEN.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { problemResponse, type Problem } from '../core/problem.js';
import { etagOf } from '../core/versions.js';
import type { Logger } from '../obs/log.js';
import { mountHealth, type Readiness } from './health.js';
import type { Metrics } from '../obs/metrics.js';
import { storeErrorCode, type VersionStore } from '../store/port.js';

export interface AdminAppDeps {
  store: VersionStore;
  metrics: Metrics;
  log: Logger;
  /** GATE_ADMIN_TOKEN; without one the versions API answers 403 to everyone. */
  adminToken: string | undefined;
  ready: Readiness;
}

const VERSION_RE = /^[\x21-\x7e]{1,256}$/;
const KEY_MAX = 512;

function send(c: Context, p: Problem): Response {
  const res = problemResponse(p);
  return c.body(res.body, res.status as 400, res.headers);
}

/** Constant-time token check: both sides are hashed first so lengths never differ. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function createAdminApp(deps: AdminAppDeps): Hono {
  const { store, metrics, log } = deps;
  const app = new Hono();

  mountHealth(app, deps.ready);
  app.get('/metrics', async (c) => c.body(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType }));

  app.use('/versions/*', async (c, next) => {
    if (!deps.adminToken) {
      return send(c, { status: 403, code: 'admin_disabled', title: 'Admin API disabled', detail: 'Set GATE_ADMIN_TOKEN to enable the versions API.' });
    }
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(c.req.header('authorization') ?? '');
    if (!m || !tokenMatches(m[1]!, deps.adminToken)) {
      return send(c, {
        status: 401,
        code: 'admin_unauthorized',
        title: 'Unauthorized',
        detail: 'The versions API needs Authorization: Bearer <GATE_ADMIN_TOKEN>.',
        headers: { 'WWW-Authenticate': 'Bearer realm="conflict-gate-admin"' },
      });
    }
    await next();
  });

  const storeDown = (c: Context, op: string, err: unknown) => {
    const code = storeErrorCode(err);
    metrics.storeError(store.kind, op, code);
    log.warn({ op, code }, 'admin: store unavailable');
    return send(c, { status: 503, code: 'store_unavailable', title: 'Store unavailable', detail: 'The version store did not answer.', headers: { 'Retry-After': '1' } });
  };

  const keyOf = (c: Context): string | null => {
    const key = c.req.param('key');
    return key && key.length <= KEY_MAX && !/[\x00-\x1f\x7f]/.test(key) ? key : null;
  };
  const badKey = (c: Context) => send(c, { status: 400, code: 'bad_request', title: 'Bad request', detail: `A resource key is 1 to ${KEY_MAX} characters, no control characters.` });

  app.get('/versions/:key{.+}', async (c) => {
    const key = keyOf(c);
    if (key === null) return badKey(c);
    try {
      const version = await store.getVersion(key);
      if (version === null) return send(c, { status: 404, code: 'not_found', title: 'Not found', detail: `No version is cached for ${key}.` });
      return c.json({ key, version }, 200, { ETag: etagOf(version) });
    } catch (err) {
      return storeDown(c, 'get_version', err);
    }
  });

  app.put('/versions/:key{.+}', async (c) => {
    const key = keyOf(c);
    if (key === null) return badKey(c);
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      body = undefined;
    }
    const raw = (body as { version?: unknown } | undefined)?.version;
    const version = typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0 ? String(raw) : raw;
    if (typeof version !== 'string' || !VERSION_RE.test(version) || version.includes('"')) {
      return send(c, { status: 400, code: 'bad_request', title: 'Bad request', detail: 'Expected a JSON body {"version":"8"}: 1 to 256 visible ASCII characters, no double quote.' });
    }
    try {
      const r = await store.publish(key, version);
      if (r.kind === 'stale') {
        return send(c, {
          status: 409,
          code: 'stale_publish',
          title: 'Stale publish',
          detail: `Version ${version} is lower than the current version ${r.current}.`,
          members: { currentVersion: r.current },
          headers: { ETag: etagOf(r.current) },
        });
      }
      log.info({ key, version, previous: r.previous }, 'version published');
      return c.json({ key, version, previous: r.previous }, 200);
    } catch (err) {
      return storeDown(c, 'publish', err);
    }
  });

  app.delete('/versions/:key{.+}', async (c) => {
    const key = keyOf(c);
    if (key === null) return badKey(c);
    try {
      const removed = await store.remove(key);
      if (!removed) return send(c, { status: 404, code: 'not_found', title: 'Not found', detail: `No version is cached for ${key}.` });
      return c.body(null, 204);
    } catch (err) {
      return storeDown(c, 'remove', err);
    }
  });

  app.notFound((c) => send(c, { status: 404, code: 'not_found', title: 'Not found', detail: 'The admin listener answers /healthz, /readyz, /metrics and /versions/<key>.' }));
  app.onError((err, c) => {
    log.error({ err }, 'admin: unexpected error');
    return send(c, { status: 500, code: 'internal_error', title: 'Internal error', detail: 'See the gate logs.' });
  });
  return app;
}
