// The Redis batcher on real Redis: a turn's rate-limit increments and GETs merged into one script call.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Batcher } from '../../src/store/redis/batcher.js';
import { connect } from '../../src/store/redis/connect.js';
import { defineScripts, RLF_INCR_LUA } from '../../src/store/redis/scripts.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';

const prefix = uniquePrefix('batch');
const conn = connect({ mode: 'single', url: SHARED_REDIS_URL }, { tls: false, commandTimeoutMs: 2000, connectTimeoutMs: 2000 });
defineScripts(conn.client);
conn.client.defineCommand('rlflxIncr', { numberOfKeys: 1, lua: RLF_INCR_LUA });
const batcher = new Batcher(conn, 2000, { answered: () => undefined, timedOut: () => undefined });
const redis = conn.client as Redis;

beforeAll(async () => {
  await new Promise<void>((r) => (conn.ready() ? r() : conn.client.once('ready', () => r())));
});
afterAll(async () => {
  await flushPrefix(redis, prefix);
  conn.client.disconnect();
});

interface Seen {
  /** A client sent it (false: a script ran it). */
  client: boolean;
  args: string[];
}

/** Every command MONITOR sees that names a key under `keyStart`; `stop()` waits for the last. */
async function watch(keyStart: string): Promise<{ stop: () => Promise<Seen[]> }> {
  const monitor = await redis.duplicate().monitor();
  const seen: Seen[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args.some((a) => a.startsWith(keyStart))) seen.push({ client: source !== 'lua', args });
  });
  return {
    stop: async () => {
      await new Promise((r) => setTimeout(r, 100));
      monitor.disconnect();
      return seen;
    },
  };
}

/** rate-limiter-flexible's increment through the batcher, as the store's facade sends it (rlf-client.ts). */
const increment = (key: string, points: number, sec: number) => {
  const args = [key, String(points), String(sec), '100', String(sec)];
  return batcher.run<[number, number]>(key, (c) => c.rlflxIncr(args), args);
};

describe('Batcher (src/store/redis/batcher.ts), one node', () => {
  test("a turn's increments and reads reach Redis as one script call, each answered as its own command would be", async () => {
    const p = `${prefix}:a:`;
    await redis.set(`${p}v1`, '7');
    await redis.set(`${p}v2`, '"etag-2"');
    const w = await watch(p);
    const [i1, r1, i2, r2, missing, i3] = await Promise.all([
      increment(`${p}alice`, 1, 60),
      batcher.read(`${p}v1`),
      increment(`${p}bob`, 2, 30),
      batcher.read(`${p}v2`),
      batcher.read(`${p}none`),
      increment(`${p}alice`, 1, 60),
    ]);
    expect([i1[0], i2[0], i3[0]]).toEqual([1, 2, 2]);
    expect(i1[1]).toBeGreaterThan(59_000);
    expect(i2[1]).toBeLessThanOrEqual(30_000);
    expect([r1, r2, missing]).toEqual(['7', '"etag-2"', null]);
    const seen = await w.stop();
    // One EVALSHA (EVAL the first time on a connection) from the client: no GET of its own.
    const sent = seen.filter((s) => s.client).map((s) => s.args);
    expect(sent.map((a) => a[0]!.toLowerCase().replace('evalsha', 'eval'))).toEqual(['eval']);
    // KEYS: the increments' (in order), then the reads'; ARGV: the number of increments first.
    expect(sent[0]!.slice(2, 9)).toEqual(['6', `${p}alice`, `${p}bob`, `${p}alice`, `${p}v1`, `${p}v2`, `${p}none`]);
    expect(sent[0]![9]).toBe('3');
    // Inside it, the commands each would have run: INCRBY per increment, GET per read.
    const inside = seen.filter((s) => !s.client).map((s) => s.args[0]!.toLowerCase());
    expect(inside.filter((c) => c === 'incrby')).toHaveLength(3);
    expect(inside.filter((c) => c === 'get')).toHaveLength(3);
  });

  test('reads alone are merged too; a key of another type fails its own read and no other', async () => {
    const p = `${prefix}:b:`;
    await redis.set(`${p}ok`, 'v');
    await redis.rpush(`${p}list`, 'x');
    const w = await watch(p);
    const results = await Promise.allSettled([batcher.read(`${p}ok`), batcher.read(`${p}list`), increment(`${p}carol`, 1, 60)]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 'v' });
    expect(results[1].status).toBe('rejected');
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(results[2]).toMatchObject({ status: 'fulfilled', value: [1, expect.any(Number)] });
    const seen = await w.stop();
    expect(seen.filter((s) => s.client).map((s) => s.args[0]!.toLowerCase().replace('evalsha', 'eval'))).toEqual(['eval']);

    const w2 = await watch(p);
    expect(await Promise.all([batcher.read(`${p}ok`), batcher.read(`${p}nothing`)])).toEqual(['v', null]);
    const seen2 = await w2.stop();
    expect(seen2.filter((s) => s.client).map((s) => s.args[0]!.toLowerCase().replace('evalsha', 'eval'))).toEqual(['eval']);
  });

  test('a read alone in its turn is a plain GET; an increment on a key of another type fails every command merged with it', async () => {
    const p = `${prefix}:c:`;
    await redis.set(`${p}v`, '3');
    const w = await watch(p);
    expect(await batcher.read(`${p}v`)).toBe('3');
    expect((await w.stop()).map((s) => [s.client, s.args[0]!.toLowerCase()])).toEqual([[true, 'get']]);

    await redis.rpush(`${p}wrong`, 'x');
    const results = await Promise.allSettled([increment(`${p}wrong`, 1, 60), batcher.read(`${p}v`)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
