// The Redis batcher on one node: the commands of one event-loop turn leave in one write, each answered on its own.
// Writes are counted twice: as the connection's socket hands them to the kernel (its _write / _writev,
// wrapped to count and then run as they are), and as a relay in front of Redis receives them.
import { Redis, ReplyError } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { Batcher } from '../../src/store/redis/batcher.js';
import { connect } from '../../src/store/redis/connect.js';
import { rlfClient } from '../../src/store/redis/rlf-client.js';
import { defineScripts } from '../../src/store/redis/scripts.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { Relay } from '../helpers/relay.js';

const raw = new Redis(SHARED_REDIS_URL);
const prefix = uniquePrefix('batch');
const relay = new Relay();
const answered: string[] = [];
/** Each write the client's socket handed to the kernel: how many commands' chunks it carried. */
const dispatched: number[] = [];
let conn: ReturnType<typeof connect>;
let batcher: Batcher;
let rlf: ReturnType<typeof rlfClient>;

const ver = (n: number) => `${prefix}ver:{orders:${n}}`;
const rl = (n: number) => `${prefix}rl:c${n}`;
const get = (key: string) => batcher.run<string | null>(key, (c) => c.get(key));
/** The writes that reached Redis naming this test's keys. */
const ours = () => relay.writes.filter((w) => w.includes(prefix));

beforeAll(async () => {
  await relay.start();
  conn = connect({ mode: 'single', url: relay.url }, { tls: false, commandTimeoutMs: 2000, connectTimeoutMs: 2000 });
  defineScripts(conn.client);
  batcher = new Batcher(conn, 2000, { answered: (node) => answered.push(node), timedOut: () => undefined });
  rlf = rlfClient(conn.client, batcher, 2000);
  // Defines rate-limiter-flexible's increment script through the facade: increments may be merged.
  new RateLimiterRedis({ storeClient: rlf, keyPrefix: `${prefix}rl`, points: 5, duration: 60 });
  for (let n = 1; n <= 5; n++) await raw.set(ver(n), String(n));
  await raw.hset(`${prefix}hash`, 'f', 'v');
  while (!conn.ready()) await new Promise((r) => setTimeout(r, 10));
  type Writes = { _write: (...a: unknown[]) => unknown; _writev: (chunks: unknown[], cb: unknown) => unknown };
  const socket = (conn.client as Redis).stream as unknown as Writes;
  const one = socket._write.bind(socket);
  const many = socket._writev.bind(socket);
  socket._write = (...a) => (dispatched.push(1), one(...a));
  socket._writev = (chunks, cb) => (dispatched.push(chunks.length), many(chunks, cb));
  // Scripts loaded on the server (a first EVALSHA answered NOSCRIPT would add an EVAL write).
  await Promise.all([rlf.consumeOne(rl(0), 5, 60), rlf.consumeOne(rl(0), 5, 60), get(ver(1))]);
});
beforeEach(() => {
  relay.writes.length = 0;
  answered.length = 0;
  dispatched.length = 0;
});
afterAll(async () => {
  conn.client.disconnect();
  await relay.stop();
  await flushPrefix(raw, prefix);
  raw.disconnect();
});

describe('batcher, one node', () => {
  test('version reads and increments issued in one turn leave in one write, each with its own answer', async () => {
    const reads = [1, 2, 3, 4, 5].map((n) => get(ver(n)));
    const incrs = [1, 2, 3, 4, 5].map((n) => rlf.consumeOne(rl(n), 5, 60));
    const [values, counts] = await Promise.all([Promise.all(reads), Promise.all(incrs)]);
    expect(values).toEqual(['1', '2', '3', '4', '5']);
    for (const [consumed, pttl] of counts) {
      expect(consumed).toBe(1);
      expect(pttl).toBeGreaterThan(55_000);
    }
    // One write(2): the five reads and the merged increment (six commands) in one writev.
    expect(dispatched).toEqual([6]);
    const writes = ours();
    expect(writes).toHaveLength(1);
    for (let n = 1; n <= 5; n++) expect(writes[0]).toContain(ver(n)), expect(writes[0]).toContain(rl(n));
    // The five increments went as one merged script call, not five.
    expect(writes[0]!.match(/EVALSHA/gi)).toHaveLength(1);
    expect(answered.length).toBeGreaterThan(0);
  });

  test('a command Redis refuses fails alone: the others of its write are answered', async () => {
    const [bad, good, incr] = await Promise.allSettled([get(`${prefix}hash`), get(ver(3)), rlf.consumeOne(rl(9), 5, 60)]);
    expect(bad.status).toBe('rejected');
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(ReplyError);
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(good).toEqual({ status: 'fulfilled', value: '3' });
    expect(incr.status).toBe('fulfilled');
    expect((incr as PromiseFulfilledResult<[number, number]>).value[0]).toBe(1);
    expect(dispatched).toEqual([3]);
    expect(ours()).toHaveLength(1);
  });

  test('a command alone in its turn is sent as is', async () => {
    await expect(get(ver(4))).resolves.toBe('4');
    expect(dispatched).toEqual([1]);
    expect(ours()).toHaveLength(1);
  });
});
