// The rate-limit gate's decision: (rule, limiter outcome, fail mode) → headers or a denial. Pure.
import { deny, STORE_RETRY_AFTER_S, type Decision, type Headers } from '../../core/decision.js';

/** What the limiter said. `degraded`: the answer came from the per-replica insurance limiter. */
export type LimitOutcome =
  | { kind: 'allowed'; limit: number; remaining: number; resetMs: number; degraded: boolean }
  | { kind: 'limited'; limit: number; resetMs: number; degraded: boolean }
  | { kind: 'store_error' };

export interface RulePolicy {
  name: string;
  windowS: number;
  onStoreError: 'memory' | 'allow' | 'deny';
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/**
 * Headers in the structured-field form of the IETF httpapi ratelimit-headers draft:
 * `RateLimit-Policy: "writes";q=20;w=60` and `RateLimit: "writes";r=19;t=42`, where t is the
 * whole seconds until the window resets (never 0, so a client is not told to retry now and fail).
 */
export function rateLimitHeaders(rule: RulePolicy, limit: number, remaining: number, resetMs: number): Headers {
  return {
    'RateLimit-Policy': `"${rule.name}";q=${limit};w=${rule.windowS}`,
    RateLimit: `"${rule.name}";r=${remaining};t=${seconds(resetMs)}`,
  };
}

export function decideRateLimit(rule: RulePolicy, outcome: LimitOutcome): Decision {
  if (outcome.kind === 'store_error') {
    if (rule.onStoreError === 'deny') {
      return deny('ratelimit', 'store_unavailable', 'The rate-limit store is unavailable; try again shortly.', {
        headers: { 'Retry-After': String(STORE_RETRY_AFTER_S) },
        members: { retryAfter: STORE_RETRY_AFTER_S },
      });
    }
    return { kind: 'allow', headers: {} };
  }
  if (outcome.kind === 'allowed') {
    return { kind: 'allow', headers: rateLimitHeaders(rule, outcome.limit, outcome.remaining, outcome.resetMs) };
  }
  const retryAfter = seconds(outcome.resetMs);
  return deny('ratelimit', 'rate_limited', `Rate limit "${rule.name}" exhausted: ${outcome.limit} requests per ${rule.windowS}s.`, {
    headers: { 'Retry-After': String(retryAfter), ...rateLimitHeaders(rule, outcome.limit, 0, outcome.resetMs) },
    members: { retryAfter },
  });
}
