// A rate-limiter-flexible limiter behind the store port's Limiter: its resolve/reject protocol in one place.
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Limiter, LimitResult } from './port.js';

/**
 * rate-limiter-flexible resolves when the point was granted and rejects with a RateLimiterRes when
 * it was not. The rejection is the verdict: a key blocked in memory is rejected with
 * consumedPoints 0, so the counts must not be re-read to decide. Any other rejection is a store
 * fault, handed to `fault` (which throws a StoreError).
 */
export function limiterOf(rlf: RateLimiterAbstract, points: number, durationS: number, fault: (err: unknown) => never): Limiter {
  return {
    consume: async (client) => {
      try {
        return allowed(await rlf.consume(client, 1));
      } catch (err) {
        if (err instanceof RateLimiterRes) return { kind: 'limited', resetMs: err.msBeforeNext };
        return fault(err);
      }
    },
    peek: async (client) => {
      let res: RateLimiterRes | null;
      try {
        res = await rlf.get(client);
      } catch (err) {
        return fault(err);
      }
      if (res === null) return { kind: 'allowed', remaining: points - 1, resetMs: durationS * 1000 };
      return res.consumedPoints >= points ? { kind: 'limited', resetMs: res.msBeforeNext } : { kind: 'allowed', remaining: points - res.consumedPoints - 1, resetMs: res.msBeforeNext };
    },
    refund: async (client) => {
      try {
        await rlf.reward(client, 1);
      } catch (err) {
        fault(err);
      }
    },
  };
}

function allowed(res: RateLimiterRes): LimitResult {
  return { kind: 'allowed', remaining: res.remainingPoints, resetMs: res.msBeforeNext };
}
