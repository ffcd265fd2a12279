// Admin GET|PUT|DELETE /versions/<resourceKey>: read, publish-if-newer (ending the lease), forget.
import type { Context, Hono } from 'hono';
import { etagOf, isResourceKey, publishableVersion, RESOURCE_KEY_MAX, VERSION_RULE } from '../../core/versions.js';
import type { Logger } from '../../obs/log.js';
import type { Metrics } from '../../obs/metrics.js';
import { storeErrorCode, type VersionStore } from '../../store/port.js';
import { jsonBody, sendProblem } from './guard.js';

export interface VersionsDeps {
  store: VersionStore;
  metrics: Metrics;
  log: Logger;
  /** conflict.versionTtl of the running config, if any. */
  versionTtlMs?: () => number | undefined;
}

export function mountVersions(app: Hono, deps: VersionsDeps): void {
  const { store, metrics, log } = deps;

  const storeDown = (c: Context, op: string, err: unknown) => {
    const code = storeErrorCode(err);
    metrics.storeError(store.kind, op, code);
    if (op === 'publish') metrics.publish('error');
    log.warn({ op, code }, 'admin: store unavailable');
    return sendProblem(c, { status: 503, code: 'store_unavailable', title: 'Store unavailable', detail: 'The version store did not answer.', headers: { 'Retry-After': '1' } });
  };

  const keyOf = (c: Context): string | null => {
    const key = c.req.param('key');
    return isResourceKey(key) ? key : null;
  };
  const badKey = (c: Context) => sendProblem(c, { status: 400, code: 'bad_request', title: 'Bad request', detail: `A resource key is 1 to ${RESOURCE_KEY_MAX} characters, no control characters.` });

  app.get('/versions/:key{.+}', async (c) => {
    const key = keyOf(c);
    if (key === null) return badKey(c);
    try {
      const version = await store.getVersion(key);
      if (version === null) return sendProblem(c, { status: 404, code: 'not_found', title: 'Not found', detail: `No version is cached for ${key}.` });
      return c.json({ key, version }, 200, { ETag: etagOf(version) });
    } catch (err) {
      return storeDown(c, 'get_version', err);
    }
  });

  app.put('/versions/:key{.+}', async (c) => {
    const key = keyOf(c);
    if (key === null) return badKey(c);
    const version = publishableVersion(((await jsonBody(c)) as { version?: unknown } | undefined)?.version);
    if (version === null) {
      return sendProblem(c, { status: 400, code: 'bad_request', title: 'Bad request', detail: `Expected a JSON body {"version":"8"}: ${VERSION_RULE}.` });
    }
    try {
      const r = await store.publish(key, version, deps.versionTtlMs?.());
      if (r.kind === 'stale') {
        metrics.publish('stale');
        return sendProblem(c, {
          status: 409,
          code: 'stale_publish',
          title: 'Stale publish',
          detail: `Version ${version} is lower than the current version ${r.current}.`,
          members: { currentVersion: r.current },
          headers: { ETag: etagOf(r.current) },
        });
      }
      metrics.publish('ok');
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
      if (!removed) return sendProblem(c, { status: 404, code: 'not_found', title: 'Not found', detail: `No version is cached for ${key}.` });
      return c.body(null, 204);
    } catch (err) {
      return storeDown(c, 'remove', err);
    }
  });
}
