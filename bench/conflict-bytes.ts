// `npx tsx bench/conflict-bytes.ts`: what the conflict gate keeps in Redis per resource and per Idempotency-Key,
// measured with MEMORY USAGE (one key) and with INFO used_memory over many keys (dictionary overhead included),
// on a redis-server of its own on a free port (it FLUSHDBs between measurements, so never a shared one).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { idempotencyScope } from '../src/gates/idempotency/scope.js';
import { keyLayout } from '../src/store/keys.js';
import { RedisStore } from '../src/store/redis.js';
import { startOwnRedisServer } from './lib/procs.js';

const N = Number(process.env.BYTES_N ?? 50_000);
const own = await startOwnRedisServer(undefined);
if (!own) throw new Error('conflict-bytes needs redis-server on PATH (it measures on a server of its own)');
const url = own.url;
const prefix = 'cg:';
const keys = keyLayout(prefix);
const redis = new Redis(url);
const store = new RedisStore({ url, keyPrefix: prefix, commandTimeoutMs: 2000, connectTimeoutMs: 2000 });
for (let i = 0; i < 100 && !store.available(); i++) await new Promise((r) => setTimeout(r, 20));

const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
const usage = async (k: string) => Number(await redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '0'));

async function many(what: string, write: (i: number, p: ReturnType<Redis['pipeline']>) => void, one: string): Promise<void> {
  await redis.flushdb();
  const before = await used();
  for (let i = 0; i < N; i += 1000) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(N, i + 1000); j++) write(j, p);
    await p.exec();
  }
  const after = await used();
  console.log(`${what.padEnd(58)} MEMORY USAGE ${String(await usage(one)).padStart(4)} B   INFO used_memory ${((after - before) / N).toFixed(0).padStart(4)} B/key (${N} keys)`);
}

console.log(`redis ${(await redis.info('server')).match(/redis_version:(\S+)/)![1]} at ${url}; resource keys like "orders:12345678"`);
await many('version, no TTL (SET, raw or no versionTtl)', (i, p) => p.set(keys.version(`orders:${10_000_000 + i}`), '17'), keys.version('orders:10000000'));
await many('version with versionTtl (SET PX)', (i, p) => p.set(keys.version(`orders:${10_000_000 + i}`), '17', 'PX', 86_400_000), keys.version('orders:10000000'));
await many('claim lease (claim mode, while a write holds it)', (i, p) => p.set(keys.claim(`orders:${10_000_000 + i}`), `${randomUUID()}:17`, 'PX', 5000), keys.claim('orders:10000000'));
await redis.flushdb();
const before = await used();
for (let i = 0; i < N; i += 500) {
  await Promise.all(
    Array.from({ length: Math.min(500, N - i) }, (_, j) =>
      store.beginIdempotent(idempotencyScope({ client: `client-${i + j}` }, randomUUID()), `${'R'.repeat(22)}.${'B'.repeat(22)}..${'M'.repeat(22)}`, 'tok12345678', 30_000, 86_400_000),
    ),
  );
}
const after = await used();
const [one] = await redis.keys(`${prefix}idem:*`).then((ks) => ks.slice(0, 1));
console.log(`${'Idempotency-Key record (body hashed; ttl 24h)'.padEnd(58)} MEMORY USAGE ${String(await usage(one!)).padStart(4)} B   INFO used_memory ${((after - before) / N).toFixed(0).padStart(4)} B/key (${N} keys)`);
await redis.flushdb();
await store.close();
redis.disconnect();
await own.stop();
