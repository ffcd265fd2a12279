// Admin GET /conflicts/top: this replica's hottest resource keys by conflict denials, as JSON.
import type { Hono } from 'hono';
import { activityOf, CONFLICT_KEYS_TRACKED } from '../../obs/activity.js';
import type { Metrics } from '../../obs/metrics.js';
import { badRequest } from './guard.js';

/**
 * `?n=` (1–256, default 20). The list the console shows (obs/activity.ts: a space-saving top-k of
 * the resource keys named by 412 / 409 / 428 denials, enforced or shadowed, per replica since it
 * started). Resource keys are unbounded, so they are never metric labels; this is where they are seen.
 */
export function mountConflicts(app: Hono, metrics: Metrics): void {
  app.get('/conflicts/top', (c) => {
    const raw = c.req.query('n');
    const n = raw === undefined ? 20 : /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
    if (!(n >= 1 && n <= CONFLICT_KEYS_TRACKED)) return badRequest(c, `n: expected a whole number from 1 to ${CONFLICT_KEYS_TRACKED}`);
    const snap = activityOf(metrics).snapshot(n);
    return c.json({ since: new Date(snap.since).toISOString(), capacity: CONFLICT_KEYS_TRACKED, keys: snap.conflicts }, 200);
  });
}
