// runPipeline: auth → rate limit → conflict; the first denial wins, allows add up their headers.
import type { Decision } from './core/decision.js';
import { H } from './core/http.js';
import type { RequestFacts } from './core/forwarded.js';
import type { AuthGate } from './gates/auth/gate.js';
import type { ConflictGate } from './gates/conflict/gate.js';
import type { RateLimitGate } from './gates/ratelimit/limiter.js';

export interface Gates {
  auth: AuthGate;
  rateLimit: RateLimitGate;
  conflict: ConflictGate;
}

/**
 * The order matters: a request that fails auth never spends the client's rate-limit budget, and a
 * request over its limit never touches the version cache or takes a lease.
 */
export async function runPipeline(facts: RequestFacts, gates: Gates): Promise<Decision> {
  const auth = await gates.auth.check(facts);
  if (auth.kind === 'deny') return auth;
  const caller = auth.kind === 'allow' ? { clientId: auth.identity.clientId, claims: auth.identity.claims } : { clientId: null, claims: null };
  const headers = auth.headers;

  const limited = await gates.rateLimit.check(facts, caller);
  if (limited !== null) {
    if (limited.kind === 'deny') return limited;
    Object.assign(headers, limited.headers);
  }

  const conflict = await gates.conflict.check(facts);
  if (conflict !== null) {
    if (conflict.kind === 'deny') return conflict;
    Object.assign(headers, conflict.headers);
  } else {
    headers[H.resourceKey] = '';
    headers[H.resourceVersion] = '';
  }
  headers[H.shadow] = '';
  headers[H.idempotencyKey] = '';
  return { kind: 'allow', headers };
}
