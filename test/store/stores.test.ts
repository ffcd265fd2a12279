import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { keyLayout } from '../../src/store/keys.js';
import { MemoryStore } from '../../src/store/memory.js';
import { StoreError } from '../../src/store/port.js';
import { RedisStore } from '../../src/store/redis.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { runStoreContract } from './contract.js';

runStoreContract('memory (fake clock)', async () => {
  let now = 1_000_000;
  const store = new MemoryStore(() => now);
  return {
    store,
    advance: async (ms) => void (now += ms),
    // An upstream's raw SET, which (unlike publish) leaves the lease in place: the lease must be void by its binding.
    rawSet: async (k, v) => void (store as unknown as { versions: Map<string, { value: string; untilMs: number }> }).versions.set(k, { value: v, untilMs: Infinity }),
  };
});

const prefix = uniquePrefix('store');
const raw = new Redis(SHARED_REDIS_URL);
const stores: RedisStore[] = [];
afterAll(async () => {
  await flushPrefix(raw, prefix);
  raw.disconnect();
  await Promise.all(stores.map((s) => s.close()));
});

async function redisStore(): Promise<RedisStore> {
  const store = new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 1000, connectTimeoutMs: 1000 });
  stores.push(store);
  for (let i = 0; i < 100 && !store.available(); i++) await new Promise((r) => setTimeout(r, 10));
  return store;
}

runStoreContract('redis (real server)', async () => ({
  store: await redisStore(),
  advance: (ms) => new Promise((r) => setTimeout(r, ms)),
  rawSet: async (k, v) => void (await raw.set(keyLayout(prefix).version(k), v)),
}));

describe('redis layout and failure shape', () => {
  test('versions live at <prefix>ver:{<key>} and leases at <prefix>claim:{<key>} (hash-tagged)', async () => {
    const store = await redisStore();
    await store.publish('orders:42', '8');
    expect(await raw.get(`${prefix}ver:{orders:42}`)).toBe('8');
    await store.claim('orders:42', 5000, 'tok');
    expect(await raw.get(`${prefix}claim:{orders:42}`)).toBe('tok:8');
    expect(await raw.pttl(`${prefix}claim:{orders:42}`)).toBeGreaterThan(4000);
  });

  test('an upstream SET is read as the version', async () => {
    const store = await redisStore();
    await raw.set(`${prefix}ver:{orders:7}`, '3');
    expect(await store.getVersion('orders:7')).toBe('3');
  });

  test('commands fail fast with a StoreError when Redis is unreachable (no queueing)', async () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:1/0', keyPrefix: prefix, commandTimeoutMs: 5000, connectTimeoutMs: 200 });
    stores.push(store);
    // A queued command would wait its 5 s timeout; one refused at once takes a few ms (bound: 1 s).
    const started = Date.now();
    await expect(store.getVersion('x')).rejects.toBeInstanceOf(StoreError);
    await expect(store.claim('x', 1000, 't')).rejects.toMatchObject({ code: 'not_ready' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await store.ping()).toBe(false);
    expect(store.available()).toBe(false);
  });
});
