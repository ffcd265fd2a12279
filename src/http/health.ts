// /healthz and /readyz, served the same way on both listeners.
import type { Hono } from 'hono';

export type Readiness = () => { ready: boolean; checks: Record<string, boolean> };

/** /healthz: 200 while the process runs. /readyz: 200 when the store answers and keys are loaded. */
export function mountHealth(app: Hono<any>, ready: Readiness): void {
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const r = ready();
    return c.json({ status: r.ready ? 'ready' : 'not_ready', checks: r.checks }, r.ready ? 200 : 503);
  });
}
