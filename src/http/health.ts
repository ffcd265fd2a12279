// /healthz and /readyz, served the same way on the gate and admin listeners; what "ready" means, from the store, the keys and the fail modes.
import type { Hono } from 'hono';
import type { Compiled } from '../config/compile.js';

/** What /readyz reports. */
export interface ReadinessReport {
  /**
   * `ready`: keys loaded and the store answers. `degraded`: keys loaded, the store does not answer,
   * and every gate's onStoreError fails open, so the answers are the ones the config promises for
   * an outage. `not_ready`: anything else.
   */
  status: 'ready' | 'degraded' | 'not_ready';
  /** `/readyz` answers 200: ready or degraded. */
  ready: boolean;
  /** The first round's meaning (`/readyz?strict=1`): the store answers and keys are loaded. */
  strictReady: boolean;
  checks: { store: boolean; keys: boolean };
  /** Why it is degraded or not ready, in words. */
  reason?: string;
}

export type Readiness = () => ReadinessReport;

/**
 * The config fields whose fail mode is `deny` (fail closed): while the store is down those gates
 * answer 503, which is not what a client of a ready replica should get. Except a gate whose rules
 * are all in shadow mode: its store errors are reported in X-Gate-Shadow and allowed, so it answers
 * what its config promises (a gate with no rules counts as the contract words it: its fail mode).
 * A gate added later with its own onStoreError belongs here.
 */
export function failClosedModes(c: Pick<Compiled, 'rateLimit' | 'conflict'>): string[] {
  const shadowOnly = (rules: readonly { mode: string }[]) => rules.length > 0 && rules.every((r) => r.mode === 'shadow');
  const out: string[] = [];
  if (c.rateLimit.onStoreError === 'deny' && !shadowOnly(c.rateLimit.rules)) out.push('rateLimit.onStoreError');
  if (c.conflict.onStoreError === 'deny' && !shadowOnly([...c.conflict.resources, ...c.conflict.idempotency])) out.push('conflict.onStoreError');
  return out;
}

/**
 * CONTRACT.md, "Readiness": 200 when auth keys are loaded and either the store answers or every
 * gate's onStoreError is a fail-open mode (memory, allow), `degraded` in the latter case; else 503.
 * A readiness probe on this keeps replicas in the Service through a Redis outage when the config
 * says to fail open, and takes them out when it says to fail closed.
 */
export function readinessOf(store: boolean, keys: boolean, failClosed: readonly string[], storeWhy?: string): ReadinessReport {
  const checks = { store, keys };
  const strictReady = store && keys;
  if (!keys) return { status: 'not_ready', ready: false, strictReady, checks, reason: 'signing keys are not loaded' };
  if (store) return { status: 'ready', ready: true, strictReady, checks };
  // The store's own words (`master 10.0.0.3:6379 not answering …`, a cluster node behind a one-node url).
  const down = `the store does not answer${storeWhy ? ` (${storeWhy})` : ''}`;
  if (failClosed.length === 0) return { status: 'degraded', ready: true, strictReady, checks, reason: `${down}; every onStoreError fails open` };
  return { status: 'not_ready', ready: false, strictReady, checks, reason: `${down} and ${failClosed.join(' and ')} ${failClosed.length === 1 ? 'is' : 'are'} deny` };
}

/** /healthz: 200 while the process runs. /readyz: see readinessOf; `/readyz?strict=1`: store and keys. */
export function mountHealth(app: Hono<any>, ready: Readiness): void {
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const r = ready();
    const strict = c.req.query('strict');
    if (strict !== undefined && strict !== '0' && strict !== 'false') {
      return c.json({ status: r.strictReady ? 'ready' : 'not_ready', checks: r.checks }, r.strictReady ? 200 : 503);
    }
    return c.json({ status: r.status, checks: r.checks, ...(r.reason ? { reason: r.reason } : {}) }, r.ready ? 200 : 503);
  });
}
