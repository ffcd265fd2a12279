// The rate-limiter-flexible internals the store's facade relies on: an upgrade that changes them fails here.
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { afterAll, describe, expect, test } from 'vitest';
import { Batcher } from '../../src/store/redis/batcher.js';
import { connect } from '../../src/store/redis/connect.js';
import { defineScripts, RLF_INCR_LUA, type Commands } from '../../src/store/redis/scripts.js';
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

/**
 * MONITOR on a connection of its own: the script calls (EVAL / EVALSHA, not the commands they run)
 * that name a key starting with `keyStart`; the shared Redis serves other files meanwhile.
 * `stop()` lets the last calls arrive, then closes the monitor and answers what it saw.
 */
async function watchScripts(keyStart: string): Promise<{ stop: () => Promise<string[][]> }> {
  const monitor = await (conn.client as Redis).duplicate().monitor();
  const seen: string[][] = [];
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (/^eval(sha)?$/i.test(args[0] ?? '') && args.some((a) => a.startsWith(keyStart))) seen.push(args);
  });
  return {
    stop: async () => {
      await new Promise((r) => setTimeout(r, 100));
      monitor.disconnect();
      return seen;
    },
  };
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

  test("consumeOne (the gate's consume, without rate-limiter-flexible's promise layers) counts on the key RateLimiterRedis counts on, as its consume would", async () => {
    await new Promise<void>((r) => (conn.ready() ? r() : conn.client.once('ready', () => r())));
    const facade = rlfClient(conn.client, batcher, 1000);
    const rlf = new RateLimiterRedis({ storeClient: facade, keyPrefix: `${prefix}one`, points: 2, duration: 60, rejectIfRedisNotReady: true });
    const key = rlf.getKey('c:bob');
    const [first, ttl] = await facade.consumeOne(key, 2, 60);
    expect(first).toBe(1);
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await rlf.consume('c:bob', 1)).toMatchObject({ consumedPoints: 2, remainingPoints: 0 });
    expect((await facade.consumeOne(key, 2, 60))[0]).toBe(3);
    await expect(rlf.consume('c:bob', 1)).rejects.toMatchObject({ consumedPoints: 4 });
    // The window was set once, by the first increment (SET NX EX), and is not extended.
    expect(await conn.client.pttl(key)).toBeLessThanOrEqual(ttl);
    // Not connected: refused as RateLimiterRedis refuses (rejectIfRedisNotReady), without a call.
    const down = rlfClient(Object.assign(Object.create(conn.client) as typeof conn.client, { status: 'reconnecting' }), batcher, 1000);
    await expect(down.consumeOne(key, 2, 60)).rejects.toThrow('Redis connection is not ready');
    expect(await conn.client.get(key)).toBe('4');
  });

  test('consumeOne calls of one turn are merged like rate-limiter-flexible\'s own (one cgIncrMany)', async () => {
    await new Promise<void>((r) => (conn.ready() ? r() : conn.client.once('ready', () => r())));
    const watch = await watchScripts(`${prefix}one2:`);
    const facade = rlfClient(conn.client, batcher, 1000);
    // Defining the script is what tells the facade it may merge (RateLimiterRedis does it in its constructor).
    const rlf = new RateLimiterRedis({ storeClient: facade, keyPrefix: `${prefix}one2`, points: 5, duration: 60, rejectIfRedisNotReady: true });
    const replies = await Promise.all(['a', 'b', 'a'].map((c) => facade.consumeOne(rlf.getKey(c), 5, 60)));
    expect(replies.map(([consumed]) => consumed)).toEqual([1, 1, 2]);
    const seen = await watch.stop();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.slice(2, 6)).toEqual(['3', `${prefix}one2:a`, `${prefix}one2:b`, `${prefix}one2:a`]);
  });

  test('the increments of one event-loop turn go to Redis as one cgIncrMany call, with the answers one call each would give', async () => {
    await new Promise<void>((r) => (conn.ready() ? r() : conn.client.once('ready', () => r())));
    const watch = await watchScripts(`${prefix}m:`);
    const facade = rlfClient(conn.client, batcher, 1000);
    const rlf = new RateLimiterRedis({ storeClient: facade, keyPrefix: `${prefix}m`, points: 2, duration: 60, rejectIfRedisNotReady: true });
    // Five calls in one turn; alice three times: her third is over the limit, as it would be alone.
    const outcomes = await Promise.all(['alice', 'bob', 'alice', 'carol', 'alice'].map((c) => rlf.consume(c, 1).then((r) => ['ok', r.consumedPoints, r.remainingPoints], (r: RateLimiterRes) => ['over', r.consumedPoints, r.remainingPoints])));
    expect(outcomes).toEqual([
      ['ok', 1, 1],
      ['ok', 1, 1],
      ['ok', 2, 0],
      ['ok', 1, 1],
      ['over', 3, 0],
    ]);
    // One call on the wire (EVAL the first time on a connection, EVALSHA after), with the five keys.
    const seen = await watch.stop();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.slice(0, 1).map((a) => a.toLowerCase())[0]).toMatch(/^eval(sha)?$/);
    expect(seen[0]!.slice(2, 8)).toEqual(['5', `${prefix}m:alice`, `${prefix}m:bob`, `${prefix}m:alice`, `${prefix}m:carol`, `${prefix}m:alice`]);
    // The keys expire with the window, as rate-limiter-flexible's own script sets them.
    const ttl = await conn.client.pttl(`${prefix}m:bob`);
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // A reward in the next turn subtracts from the same count.
    await rlf.reward('alice', 1);
    expect((await rlf.get('alice'))?.consumedPoints).toBe(2);
  });

  test('one turn\'s increments with different windows and a reward among them: one call, each answered in order with its own window', async () => {
    await new Promise<void>((r) => (conn.ready() ? r() : conn.client.once('ready', () => r())));
    const watch = await watchScripts(`${prefix}runs:`);
    const facade = rlfClient(conn.client, batcher, 1000);
    new RateLimiterRedis({ storeClient: facade, keyPrefix: `${prefix}runs`, points: 5, duration: 60 });
    const [a, b, c] = ['a', 'b', 'c'].map((x) => `${prefix}runs:${x}`);
    const replies = await Promise.all([
      facade.consumeOne(a!, 5, 60),
      facade.consumeOne(b!, 5, 10),
      facade.consumeOne(a!, 5, 60),
      facade.rlflxIncr([a!, '-1', '60', '5', '60']),
      facade.consumeOne(c!, 5, 10),
      facade.consumeOne(a!, 5, 60),
    ]);
    expect(replies.map((r) => (r as number[])[0])).toEqual([1, 1, 2, 1, 1, 2]);
    const seen = await watch.stop();
    expect(seen).toHaveLength(1);
    // Six keys, then runs of (count, points, secDuration) in their order.
    expect(seen[0]!.slice(2)).toEqual(['6', a, b, a, a, c, a, '1', '1', '60', '1', '1', '10', '1', '1', '60', '1', '-1', '60', '1', '1', '10', '1', '1', '60']);
    const c2 = conn.client as Redis;
    expect(await c2.pttl(b!)).toBeLessThanOrEqual(10_000);
    expect(await c2.pttl(c!)).toBeLessThanOrEqual(10_000);
    expect(await c2.pttl(a!)).toBeGreaterThan(10_000);
    // A run of equal arguments is one run: three increments of one window, one run.
    const watch2 = await watchScripts(`${prefix}runs2:`);
    await Promise.all(['x', 'y', 'x'].map((x) => facade.consumeOne(`${prefix}runs2:${x}`, 5, 60)));
    expect((await watch2.stop())[0]!.slice(2)).toEqual(['3', `${prefix}runs2:x`, `${prefix}runs2:y`, `${prefix}runs2:x`, '3', '1', '60']);
  });

  test('cgIncrMany leaves each key as rate-limiter-flexible\'s own script does: a new key, one inside its window, one with no expiry, a reward', async () => {
    await new Promise<void>((r) => (conn.ready() ? r() : conn.client.once('ready', () => r())));
    const c = conn.client as Redis;
    // The same starting states under two prefixes: one driven by RLF_INCR_LUA per key, one by a merged call.
    const states = async (p: string) => {
      await c.set(`${p}windowed`, '3', 'PX', 30_000);
      await c.set(`${p}forever`, '5');
    };
    const own = `${prefix}own:`;
    const many = `${prefix}many:`;
    await states(own);
    await states(many);
    const calls: [string, string][] = [['new', '1'], ['windowed', '1'], ['forever', '1'], ['new', '1'], ['rewarded', '-1']];
    const ownReplies: number[] = [];
    for (const [k, points] of calls) ownReplies.push(...((await c.eval(RLF_INCR_LUA, 1, `${own}${k}`, points, '60', '10', '60')) as number[]));
    // Runs of (count, points, secDuration): four increments, then the reward.
    const manyReplies = (await (conn.client as unknown as Commands).cgIncrMany(calls.length, ...calls.map(([k]) => `${many}${k}`), 4, '1', '60', 1, '-1', '60')) as number[];
    // Counts are equal; pttl equal to within the milliseconds between the two runs.
    for (let i = 0; i < ownReplies.length; i += 2) {
      expect(manyReplies[i], `count of call ${i / 2}`).toBe(ownReplies[i]);
      expect(Math.abs(manyReplies[i + 1]! - ownReplies[i + 1]!), `pttl of call ${i / 2}`).toBeLessThan(1000);
    }
    expect(manyReplies.filter((_, i) => i % 2 === 0)).toEqual([1, 4, 6, 2, -1]);
    for (const k of ['new', 'windowed', 'forever', 'rewarded']) {
      expect(await c.get(`${many}${k}`), k).toBe(await c.get(`${own}${k}`));
      const [a, b] = [await c.pttl(`${own}${k}`), await c.pttl(`${many}${k}`)];
      // Every key has an expiry (the one with none got the window); the windowed one kept its own.
      expect(b, k).toBeGreaterThan(0);
      expect(Math.abs(a - b), k).toBeLessThan(1000);
    }
    expect(await c.pttl(`${many}windowed`)).toBeLessThanOrEqual(30_000);
  });

  test('merging follows the script rate-limiter-flexible defines: the one it mirrors (this version), and a changed one is never merged', async () => {
    let defined = '';
    const spy = { ...conn.client, defineCommand: (_n: string, def: { lua: string }) => (defined = def.lua) } as unknown as typeof conn.client;
    new RateLimiterRedis({ storeClient: rlfClient(spy, batcher, 1000), keyPrefix: `${prefix}s`, points: 1, duration: 1 });
    // If this fails after an upgrade, merging is off (correct, slower): update RLF_INCR_LUA and LUA_INCR_MANY together.
    expect(defined).toBe(RLF_INCR_LUA);

    const watch = await watchScripts(`${prefix}c:`);
    const custom = `${RLF_INCR_LUA} -- changed`;
    const rlf = new RateLimiterRedis({ storeClient: rlfClient(conn.client, batcher, 1000), keyPrefix: `${prefix}c`, points: 5, duration: 60, rejectIfRedisNotReady: true, customIncrTtlLuaScript: custom });
    const got = await Promise.all(['a', 'b', 'a'].map((c) => rlf.consume(c, 1)));
    expect(got.map((r) => r.consumedPoints)).toEqual([1, 1, 2]);
    const seen = await watch.stop();
    // Three calls of its own script, one key each.
    expect(seen).toHaveLength(3);
    for (const args of seen) expect(args[2]).toBe('1');
  });
});
