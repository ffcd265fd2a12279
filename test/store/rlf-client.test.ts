// The rate-limiter-flexible internals the store's facade relies on: an upgrade that changes them fails here.
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { afterAll, describe, expect, test } from 'vitest';
import { Batcher } from '../../src/store/redis/batcher.js';
import { connect } from '../../src/store/redis/connect.js';
import { defineScripts } from '../../src/store/redis/scripts.js';
import { RLF_CLIENT_MEMBERS, rlfClient } from '../../src/store/redis/rlf-client.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';

const prefix = uniquePrefix('rlf');
const conn = connect({ mode: 'single', url: SHARED_REDIS_URL }, { tls: false, commandTimeoutMs: 2000, connectTimeoutMs: 2000 });
defineScripts(conn.client);
const batcher = new Batcher(conn, 2000, { answered: () => undefined, timedOut: () => undefined });
afterAll(async () => {
  await flushPrefix(conn.client as never, prefix);
  conn.client.disconnect();
});

/** Wraps an object so that every member read, and every call with its arguments (down a multi() chain), is recorded. */
function recording<T extends object>(target: T, touched: Set<string>, calls: unknown[][], path: string[] = []): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const value: unknown = Reflect.get(t, prop, receiver);
      if (typeof prop !== 'string') return value;
      if (path.length === 0) touched.add(prop);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push([...path, prop, ...args.flat()]);
        const out: unknown = (value as (...a: unknown[]) => unknown).apply(t, args);
        // multi() and its chained commands: keep recording down the chain.
        return out !== null && typeof out === 'object' && !(out instanceof Promise) && prop !== 'exec' ? recording(out as object, touched, calls, [...path, prop]) : out;
      };
    },
  });
}

describe('rate-limiter-flexible through the store facade (src/store/redis/rlf-client.ts), on real Redis', () => {
  test('consume and reward call rlflxIncr([key, points, secDuration, limit, duration]); get calls multi().get().pttl().exec(); nothing else is used', async () => {
    await new Promise<void>((r) => (conn.ready() ? r() : conn.client.once('ready', () => r())));
    const touched = new Set<string>();
    const calls: unknown[][] = [];
    const facade = recording(rlfClient(conn.client, batcher, 1000), touched, calls);
    const rlf = new RateLimiterRedis({ storeClient: facade, keyPrefix: `${prefix}rl:writes`, points: 2, duration: 60, rejectIfRedisNotReady: true });
    const key = `${prefix}rl:writes:c:alice`;
    expect(await rlf.consume('c:alice', 1)).toMatchObject({ consumedPoints: 1, remainingPoints: 1 });
    expect(await rlf.consume('c:alice', 1)).toMatchObject({ consumedPoints: 2, remainingPoints: 0 });
    await expect(rlf.consume('c:alice', 1)).rejects.toBeInstanceOf(RateLimiterRes);
    await rlf.reward('c:alice', 1);
    const got = await rlf.get('c:alice');
    expect(got?.consumedPoints).toBe(2);
    expect(got?.msBeforeNext).toBeGreaterThan(50_000);
    expect(calls).toEqual([
      ['defineCommand', 'rlflxIncr', { numberOfKeys: 1, lua: expect.stringContaining("redis.call('incrby', KEYS[1], ARGV[1])") }],
      ['rlflxIncr', key, '1', '60', '2', '60'],
      ['rlflxIncr', key, '1', '60', '2', '60'],
      ['rlflxIncr', key, '1', '60', '2', '60'],
      ['rlflxIncr', key, '-1', '60', '2', '60'],
      ['multi'],
      ['multi', 'get', key],
      ['multi', 'get', 'pttl', key],
      ['multi', 'get', 'pttl', 'exec'],
    ]);
    // Nothing else of the client is read (constructor.name only tells node-redis from ioredis).
    touched.delete('constructor');
    expect([...touched].sort()).toEqual([...RLF_CLIENT_MEMBERS].sort());
    // The key is rate-limiter-flexible's getKey(): what the store looks up the master of before a call.
    expect(rlf.getKey('c:alice')).toBe(key);
  });

  test('a client that is not ready is refused without a call (rejectIfRedisNotReady reads status)', async () => {
    const calls: unknown[][] = [];
    const facade = recording({ ...rlfClient(conn.client, batcher, 1000), status: 'reconnecting' }, new Set(), calls);
    const rlf = new RateLimiterRedis({ storeClient: facade, keyPrefix: `${prefix}p`, points: 3, duration: 60, rejectIfRedisNotReady: true });
    await expect(rlf.consume('k', 1)).rejects.toThrow();
    expect(calls.filter((c) => c[0] === 'rlflxIncr')).toEqual([]);
  });
});
