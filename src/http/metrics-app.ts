// The metrics listener (server.metricsPort): /metrics and nothing else, so a NetworkPolicy can open it alone.
import { Hono } from 'hono';
import type { Metrics } from '../obs/metrics.js';
import { problemResponse } from '../core/problem.js';

/** GET /metrics (Prometheus text); every other path is a 404 problem. */
export function createMetricsApp(metrics: Metrics): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => c.body(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType }));
  app.notFound(() => {
    const p = problemResponse({ status: 404, code: 'not_found', title: 'Not found', detail: 'The metrics listener answers GET /metrics only.' });
    return new Response(p.body, { status: p.status, headers: p.headers });
  });
  return app;
}
