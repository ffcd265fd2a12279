// What rate-limiter-flexible's RateLimiterRedis sees as its ioredis client: a facade over the store's connection.
import type { Batcher } from './batcher.js';
import { within } from './errors.js';
import type { Client } from './connect.js';
import { RLF_INCR_LUA } from './scripts.js';

/**
 * The members RateLimiterRedis (rate-limiter-flexible 11) uses on its `storeClient`, and nothing else:
 * - `defineCommand('rlflxIncr', { numberOfKeys: 1, lua })`, once, in its constructor;
 * - `status`, read before each call (`rejectIfRedisNotReady`): 'ready' or not;
 * - `rlflxIncr([rlKey, points, secDuration, limiterPoints, limiterDuration])` for consume() and
 *   reward() (RateLimiterRedis#_upsert): the one round trip of a rate-limit decision, resolving to
 *   `[consumed, pttl]`;
 * - `multi().get(rlKey).pttl(rlKey).exec()` for get() (RateLimiterRedis#_get), resolving to
 *   `[[err, points], [err, pttl]]`; both commands on the one key, so one slot.
 * (`constructor.name` is read too, to tell node-redis from ioredis.) delete(), block() and set()
 * would call `del` and `multi().set()`; the gate never calls them. test/store/rlf-client.test.ts
 * drives a real RateLimiterRedis through a recording facade and fails if an upgrade reaches for
 * anything else, which would otherwise bypass the batcher or, on a facade without it, silently
 * fall back to a per-replica limit.
 */
export const RLF_CLIENT_MEMBERS = ['defineCommand', 'status', 'rlflxIncr', 'multi'] as const;

export interface RlfClient {
  readonly status: string;
  defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void;
  rlflxIncr(args: string[]): Promise<unknown>;
  multi(): unknown;
  /**
   * Ours, not rate-limiter-flexible's: the increment RateLimiterRedis#consume(key, 1) sends (its
   * readiness check, then rlflxIncr with its arguments), for the gate's consume, which reads the
   * reply as RateLimiterRedis does (store/limiter.ts) without its four promise layers around it.
   */
  consumeOne(rlKey: string, points: number, durationS: number): Promise<[consumed: number, pttlMs: number]>;
}

/** RateLimiterRedis#_upsert's refusal when the client is not connected (rejectIfRedisNotReady). */
const NOT_READY = 'Redis connection is not ready';

/**
 * Each rlflxIncr goes through the batcher (one pipeline per master per event-loop turn, under the
 * store's deadline, the increments of a turn merged into one script call where the mode allows):
 * every rate-limit key is one key, so one slot, whatever the mode. get() is
 * explain's peek, rare: straight to the client.
 */
export function rlfClient(client: Client, batcher: Batcher, timeoutMs: number): RlfClient {
  // Merged by the batcher into one cgIncrMany only while RateLimiterRedis' script is the one that mirrors.
  let mergeable = false;
  const rlflxIncr = (args: string[]) => batcher.run(args[0]!, (c) => c.rlflxIncr(args), mergeable ? args : undefined);
  return {
    get status() {
      return client.status;
    },
    defineCommand: (name, def) => {
      if (name === 'rlflxIncr') mergeable = def.lua === RLF_INCR_LUA;
      client.defineCommand(name, def);
    },
    rlflxIncr,
    consumeOne: (rlKey, points, durationS) => {
      if (client.status !== 'ready') return Promise.reject(new Error(NOT_READY));
      const sec = String(durationS);
      return rlflxIncr([rlKey, '1', sec, String(points), sec]) as Promise<[number, number]>;
    },
    multi: () => {
      // Outside the batcher: its exec() gets the same deadline as every other store call.
      const m = client.multi();
      const exec = m.exec.bind(m);
      m.exec = (() => within(exec(), timeoutMs)) as typeof m.exec;
      return m;
    },
  };
}
