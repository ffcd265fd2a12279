// Admin GET /conflicts/top: this replica's hottest resource keys by conflict denials (space-saving top-k).
import type { Hono } from 'hono';
import { hotKeysOf } from '../../gates/conflict/hot-keys.js';
import type { Metrics } from '../../obs/metrics.js';
import { badRequest } from './guard.js';

/**
 * `?n=` (1–capacity, default 20). Per replica and since it started (a reload keeps the counts):
 * resource keys are unbounded, so they are never metric labels; this is where they are seen.
 */
export function mountConflicts(app: Hono, metrics: Metrics): void {
  app.get('/conflicts/top', (c) => {
    const hot = hotKeysOf(metrics);
    const raw = c.req.query('n');
    const n = raw === undefined ? 20 : /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
    if (!(n >= 1 && n <= hot.capacity)) return badRequest(c, `n: expected a whole number from 1 to ${hot.capacity}`);
    return c.json({ since: new Date(hot.since).toISOString(), denials: hot.totalCount, capacity: hot.capacity, keys: hot.top(n) }, 200);
  });
}
