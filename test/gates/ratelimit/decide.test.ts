// The pure rate-limit decision: (rule, limiter outcome, fail mode) → allow with headers, or a denial.
import { describe, expect, test } from 'vitest';
import { decideRateLimit, rateLimitHeaders, type LimitOutcome, type RulePolicy } from '../../../src/gates/ratelimit/decide.js';

const rule = (onStoreError: RulePolicy['onStoreError'] = 'memory'): RulePolicy => ({ name: 'writes', windowS: 60, onStoreError });

describe('decideRateLimit', () => {
  test.each<[string, RulePolicy, LimitOutcome, Record<string, unknown>]>([
    ['allowed: the budget left, reset in whole seconds', rule(), { kind: 'allowed', limit: 20, remaining: 19, resetMs: 41_200, degraded: false }, { kind: 'allow', headers: { 'RateLimit-Policy': '"writes";q=20;w=60', RateLimit: '"writes";r=19;t=42' } }],
    ['allowed by the insurance limiter: the same headers', rule(), { kind: 'allowed', limit: 20, remaining: 3, resetMs: 1000, degraded: true }, { kind: 'allow', headers: { RateLimit: '"writes";r=3;t=1' } }],
    ['a reset under a second is never t=0', rule(), { kind: 'allowed', limit: 5, remaining: 0, resetMs: 10, degraded: false }, { kind: 'allow', headers: { RateLimit: '"writes";r=0;t=1' } }],
    ['limited: 429 with Retry-After, r=0 and retryAfter', rule(), { kind: 'limited', limit: 20, resetMs: 12_001, degraded: false }, { kind: 'deny', code: 'rate_limited', headers: { 'Retry-After': '13', RateLimit: '"writes";r=0;t=13', 'RateLimit-Policy': '"writes";q=20;w=60' }, members: { retryAfter: 13 } }],
    ['store down, memory mode without insurance: allow, no headers', rule('memory'), { kind: 'store_error' }, { kind: 'allow', headers: {} }],
    ['store down, allow: allow, no headers', rule('allow'), { kind: 'store_error' }, { kind: 'allow', headers: {} }],
    ['store down, deny: 503 store_unavailable, Retry-After 1', rule('deny'), { kind: 'store_error' }, { kind: 'deny', code: 'store_unavailable', headers: { 'Retry-After': '1' }, members: { retryAfter: 1 } }],
  ])('%s', (_name, policy, outcome, expected) => {
    expect(decideRateLimit(policy, outcome)).toMatchObject(expected);
  });

  test('the structured-field headers (IETF httpapi ratelimit-headers draft)', () => {
    expect(rateLimitHeaders(rule(), 100, 7, 59_000)).toEqual({ 'RateLimit-Policy': '"writes";q=100;w=60', RateLimit: '"writes";r=7;t=59' });
  });
});
