// The admin listener: /healthz, /readyz, /metrics, and behind GATE_ADMIN_TOKEN the versions API, /explain, /reload.
import { Hono } from 'hono';
import type { ForwardedOptions } from '../core/forwarded.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import type { Gates } from '../pipeline.js';
import type { ReloadOutcome } from '../server.js';
import type { VersionStore } from '../store/port.js';
import { mountConsole } from './admin/console.js';
import { mountConflicts } from './admin/conflicts.js';
import { mountExplain } from './admin/explain.js';
import { adminGuard, sendProblem } from './admin/guard.js';
import { mountIdempotency } from './admin/idempotency.js';
import { mountReload } from './admin/reload.js';
import { mountVersions } from './admin/versions.js';
import { mountHealth, type Readiness } from './health.js';

export { tokenMatches } from './admin/guard.js';

export interface AdminAppDeps {
  store: VersionStore;
  metrics: Metrics;
  log: Logger;
  /** GATE_ADMIN_TOKEN; without one the admin API answers 403 to everyone. */
  adminToken: string | undefined;
  ready: Readiness;
  /** The running generation (read per request, so a reload is seen at once). */
  current: () => { gates: Gates; forwarded: ForwardedOptions; versionTtlMs?: number };
  /** Re-reads the config file; undefined when the gate was not started from one. */
  reload?: () => Promise<ReloadOutcome>;
}

export function createAdminApp(deps: AdminAppDeps): Hono {
  const { log } = deps;
  const app = new Hono();

  mountHealth(app, deps.ready);
  app.get('/metrics', async (c) => c.body(await deps.metrics.registry.metrics(), 200, { 'Content-Type': deps.metrics.registry.contentType }));

  const guard = adminGuard(deps.adminToken);
  for (const path of ['/versions/*', '/explain', '/reload', '/conflicts/*', '/idempotency/*']) app.use(path, guard);
  mountVersions(app, { store: deps.store, metrics: deps.metrics, log, versionTtlMs: () => deps.current().versionTtlMs });
  mountExplain(app, deps.current);
  mountReload(app, deps.reload);
  mountConsole(app, deps, guard);
  mountConflicts(app, deps.metrics);
  mountIdempotency(app, { store: deps.store, metrics: deps.metrics, log });

  app.notFound((c) => sendProblem(c, { status: 404, code: 'not_found', title: 'Not found', detail: 'The admin listener answers /healthz, /readyz, /metrics, /versions/<key>, POST /explain, POST /reload, GET /conflicts/top and POST /idempotency/end.' }));
  app.onError((err, c) => {
    log.error({ err }, 'admin: unexpected error');
    return sendProblem(c, { status: 500, code: 'internal_error', title: 'Internal error', detail: 'See the gate logs.' });
  });
  return app;
}
